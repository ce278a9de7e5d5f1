"""deploy/compose.yaml and deploy/tanya.env.example: valid for docker compose, and wired the way
docs/operations.md says (health checks, start order, volumes, GPU, profiles, settings names)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.deploy.helpers import (
    COMPOSE_FILE,
    DEPLOY,
    ENV_EXAMPLE,
    PROFILE_SETS,
    active_services,
    compose_validator,
    environment_of,
    known_setting_names,
    load_compose,
    load_healthcheck,
    read_env_file,
)

TANYA_IMAGES = ("tanya:cpu", "tanya:cuda")
ONE_SHOT = {"migrate", "model-download"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def tanya_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: service for name, service in services.items() if service.get("image") in TANYA_IMAGES}


def volume_sources(service: dict[str, Any]) -> dict[str, str]:
    """target → source of a service's short-syntax volumes."""
    mounts = {}
    for entry in service.get("volumes", []):
        source, target, *_ = entry.split(":")
        mounts[target] = source
    return mounts


# -- a real compose implementation ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def validator() -> list[str]:
    argv, description = compose_validator()
    if argv is None:
        pytest.skip(f"no docker compose v2 to validate deploy/compose.yaml with: {description}")
    print(f"validating with {description}")
    return argv


def project(root: Path, *, env_file: bool = True) -> Path:
    """A copy of deploy/ to run compose in, with the example as its .env (the real deploy/.env, if an
    operator has one here, is neither read nor touched)."""
    directory = root / "deploy"
    directory.mkdir()
    for name in (COMPOSE_FILE.name, "haproxy.cfg"):
        shutil.copy2(DEPLOY / name, directory / name)
    if env_file:
        shutil.copy2(ENV_EXAMPLE, directory / ".env")
    return directory


def run_compose(
    validator: list[str], directory: Path, *args: str, **environ: str
) -> subprocess.CompletedProcess:
    # Only the variables given here reach compose's interpolation and COMPOSE_* settings.
    environment = {key: value for key, value in os.environ.items() if key in ("PATH", "HOME", "TMPDIR")}
    environment.update(environ)
    return subprocess.run(
        [*validator, *args],
        cwd=directory,
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("profiles", list(PROFILE_SETS.values()), ids=list(PROFILE_SETS))
def test_docker_compose_accepts_the_file(validator, compose, profiles, tmp_path: Path) -> None:
    flags = [argument for profile in profiles for argument in ("--profile", profile)]
    # COMPOSE_PROFILES empty: exactly the profiles named by the flags, not the example's default.
    result = run_compose(
        validator, project(tmp_path), *flags, "config", "--format", "json", COMPOSE_PROFILES=""
    )
    assert result.returncode == 0, f"docker compose config {' '.join(flags)} failed:\n{result.stderr}"
    resolved = json.loads(result.stdout)
    assert set(resolved["services"]) == set(active_services(compose, profiles))
    # The env file reached the tanya containers, its ${…} references expanded by compose itself…
    example = read_env_file(ENV_EXAMPLE)
    bot_environment = resolved["services"]["bot"]["environment"]
    assert bot_environment["TANYA_DATABASE_URL"] == example["TANYA_DATABASE_URL"]
    assert bot_environment["TANYA_DOCUMENT_STORE"] == example["TANYA_DOCUMENT_STORE"]
    # …while PostgreSQL and Elasticsearch got their password and nothing else from it.
    for name, secret in (("postgres", "POSTGRES_PASSWORD"), ("elasticsearch", "ELASTIC_PASSWORD")):
        environment = resolved["services"][name]["environment"]
        assert environment[secret] == example[secret]
        assert not any(key.startswith(("SLACK_", "TANYA_")) for key in environment), name


def test_the_examples_profiles_start_one_worker(validator, compose, tmp_path: Path) -> None:
    result = run_compose(validator, project(tmp_path), "config", "--services")
    assert result.returncode == 0, result.stderr
    profiles = tuple(read_env_file(ENV_EXAMPLE)["COMPOSE_PROFILES"].split(","))
    assert set(result.stdout.split()) == set(active_services(compose, profiles))
    assert len([name for name in result.stdout.split() if name.startswith("worker")]) == 1


def test_docker_compose_refuses_to_start_without_the_env_file(validator: list[str], tmp_path: Path) -> None:
    result = run_compose(validator, project(tmp_path, env_file=False), "config", "--quiet")
    assert result.returncode != 0
    assert "deploy/.env" in result.stderr or "/.env not found" in result.stderr, result.stderr


def test_the_validator_does_reject_a_broken_file(validator: list[str], tmp_path: Path) -> None:
    """The check above means something only if this validator fails on a file that is wrong."""
    broken = tmp_path / "compose.yaml"
    broken.write_text("services:\n  bot:\n    image: tanya:cpu\n    healthcheck:\n      tset: [CMD, true]\n")
    result = run_compose(validator, tmp_path, "config", "--quiet")
    assert result.returncode != 0, result.stdout


# -- structure: what the operator's guide relies on -------------------------------------------------------


def test_every_service_has_an_image_and_tanya_images_are_built_from_the_dockerfile(services) -> None:
    for name, service in services.items():
        assert service.get("image"), f"{name} has no image"
    for name, service in tanya_services(services).items():
        build = service.get("build")
        assert build, f"{name} cannot be built with `docker compose build`"
        context = (COMPOSE_FILE.parent / build["context"]).resolve()
        assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name
    assert services["worker"]["image"] == "tanya:cuda"
    assert services["worker"]["build"]["args"] == {"TORCH_VARIANT": "cu128", "TANYA_EXTRAS": "gpu"}


def test_every_long_running_service_has_a_health_check(services) -> None:
    for name, service in services.items():
        if name in ONE_SHOT:
            assert service.get("restart") == "no", f"one-shot {name} must not be restarted"
            continue
        check = service.get("healthcheck") or {}
        assert not check.get("disable"), f"{name} disables its health check"
        assert check.get("test"), f"{name} has no health check"
        assert service.get("restart") in ("unless-stopped", "always"), f"{name} is not restarted"


def test_the_bot_runs_http_mode_in_two_replicas_and_is_checked_on_readyz(services) -> None:
    bot = services["bot"]
    assert bot["command"] == ["serve", "--host", "0.0.0.0", "--port", "3000"]
    assert bot["deploy"]["replicas"] == 2
    assert "ports" not in bot, "replicas cannot share a published port: the load balancer publishes it"
    assert bot["healthcheck"]["test"] == ["CMD", "tanya-healthcheck"]

    assert load_healthcheck().probe_url(bot["command"], {}) == "http://127.0.0.1:3000/readyz"


def test_one_published_port_leads_to_the_bot_replicas(services) -> None:
    published = {name: service["ports"] for name, service in services.items() if service.get("ports")}
    assert list(published) == ["lb"], f"only the load balancer publishes a port, not {sorted(published)}"
    (port,) = published["lb"]
    assert port.endswith(":8080")
    config = (DEPLOY / "haproxy.cfg").read_text(encoding="utf-8")
    assert re.search(r"^\s*bind :8080$", config, re.MULTILINE)
    assert re.search(r"^\s*server-template \S+ \d+ bot:3000 check\b.*resolvers docker", config, re.MULTILINE)
    assert re.search(r"^\s*option httpchk GET /readyz$", config, re.MULTILINE)
    assert volume_sources(services["lb"])["/usr/local/etc/haproxy/haproxy.cfg"] == "./haproxy.cfg"


def test_start_order_database_search_then_migrations_then_tanya(services) -> None:
    for name, service in services.items():
        for target, condition in (service.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on unknown service {target}"
            expected = "service_completed_successfully" if target in ONE_SHOT else "service_healthy"
            assert condition["condition"] == expected, f"{name} → {target}"
    assert services["migrate"]["command"] == ["db", "upgrade"]
    for name in ("bot", "worker", "worker-cpu"):
        depends = services[name]["depends_on"]
        assert {"postgres", "elasticsearch", "migrate"} <= set(depends), name
    assert services["bot"]["depends_on"]["vllm"]["required"] is False  # vllm is optional
    assert services["vllm"]["depends_on"] == {
        "model-download": {"condition": "service_completed_successfully"}
    }
    # On a shared card vLLM allocates its share first, the worker sizes itself to what is left.
    assert services["worker"]["depends_on"]["vllm"] == {"condition": "service_healthy", "required": False}


def test_volumes_are_declared_and_shared_at_the_same_paths(compose, services) -> None:
    declared = set(compose["volumes"])
    for name, service in services.items():
        for source in volume_sources(service).values():
            if source.startswith((".", "/")):
                assert (DEPLOY / source).exists(), f"{name} mounts a missing file {source}"
            else:
                assert source in declared, f"{name} mounts undeclared volume {source}"
    assert volume_sources(services["postgres"])["/var/lib/postgresql/data"] == "postgres"
    assert volume_sources(services["elasticsearch"])["/usr/share/elasticsearch/data"] == "elasticsearch"
    # The registry stores adapter paths under TANYA_HOME/adapters and hands them to vLLM as they are.
    for name in ("bot", "worker", "worker-cpu"):
        mounts = volume_sources(services[name])
        assert mounts["/data"] == "home" and mounts["/data/adapters"] == "adapters", name
    assert volume_sources(services["vllm"])["/data/adapters"] == "adapters"
    for name, service in tanya_services(services).items():
        assert environment_of(service)["TANYA_HOME"] == "/data", name
    bot_mounts = services["bot"]["volumes"]
    assert "adapters:/data/adapters:ro" in bot_mounts, "only the worker writes adapters"


def test_workers_one_per_profile_and_only_the_gpu_one_reserves_a_gpu(compose, services) -> None:
    for profiles in PROFILE_SETS.values():
        workers = [
            name
            for name, service in active_services(compose, profiles).items()
            if service.get("command") == ["worker"]
        ]
        assert len(workers) == (1 if {"gpu", "cpu"} & set(profiles) else 0), (profiles, workers)
    assert services["worker"]["profiles"] == ["gpu"]
    assert services["worker-cpu"]["profiles"] == ["cpu"]
    assert environment_of(services["worker"])["TANYA_TRAIN_DEVICE"] == "cuda"
    assert environment_of(services["worker-cpu"])["TANYA_TRAIN_DEVICE"] == "cpu"
    for name in ("worker", "vllm"):
        (device,) = services[name]["deploy"]["resources"]["reservations"]["devices"]
        assert device["driver"] == "nvidia" and "gpu" in device["capabilities"], name
    assert "deploy" not in services["worker-cpu"]


def test_vllm_serves_the_base_model_the_worker_trains_with_runtime_lora_loading(services) -> None:
    vllm = services["vllm"]
    assert vllm["profiles"] == ["vllm"] and services["model-download"]["profiles"] == ["vllm"]
    arguments = dict(
        argument.split("=", 1) if "=" in argument else (argument, "") for argument in vllm["command"]
    )
    assert "--enable-lora" in arguments
    assert environment_of(vllm)["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    # One base, named once: vLLM serves TANYA_BASE_MODEL (the example's, and the same default), the worker
    # trains on it and the bot compares it with /v1/models; all three see the folder at the same path.
    example = read_env_file(ENV_EXAMPLE)
    assert arguments["--model"] == "${TANYA_BASE_MODEL:-" + example["TANYA_BASE_MODEL"] + "}"
    assert example["TANYA_BASE_MODEL"].startswith("/models/") and example["MODEL_REPO"].startswith(
        "Qwen/Qwen3-"
    )
    assert "--served-model-name" not in arguments  # its /v1/models entry is the folder tanya names
    for name in ("vllm", "worker", "bot", "model-download"):
        assert volume_sources(services[name])["/models"] == "models", name
    assert "models:/models" in services["model-download"]["volumes"]  # only it writes the folder
    assert services["model-download"]["entrypoint"] == ["tanya-fetch-model"]
    assert int(arguments["--max-lora-rank"]) >= int(
        environment_of(services["bot"])["TANYA_SERVER_MAX_LORA_RANK"]
    )
    # The card's memory is planned: vLLM's share and the worker's budget come from the env file.
    assert arguments["--gpu-memory-utilization"].startswith("${VLLM_GPU_MEMORY_UTILIZATION:-")
    assert (
        0 < float(example["VLLM_GPU_MEMORY_UTILIZATION"]) < 1
        and float(example["TANYA_TRAIN_GPU_MEMORY_GIB"]) > 0
    )


def test_elasticsearch_is_single_node_with_security_and_a_fixed_heap(services) -> None:
    environment = environment_of(services["elasticsearch"])
    assert services["elasticsearch"]["image"].startswith("docker.elastic.co/elasticsearch/elasticsearch:8.")
    assert environment["discovery.type"] == "single-node"
    assert environment["xpack.security.enabled"] == "true"
    heap = dict(re.findall(r"-Xm([sx])(\S+)", environment["ES_JAVA_OPTS"]))
    assert heap["s"] == heap["x"], "min and max heap differ"
    assert "ELASTIC_PASSWORD" in " ".join(services["elasticsearch"]["healthcheck"]["test"])


def test_postgres_16_with_its_own_volume(services) -> None:
    postgres = services["postgres"]
    assert re.match(r"postgres:16\b", postgres["image"])
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])


# -- secrets and settings --------------------------------------------------------------------------------

SECRET_NAMES = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "POSTGRES_PASSWORD",
    "ELASTIC_PASSWORD",
    "TANYA_GENERATOR_API_KEY",
)


def test_secrets_come_only_from_the_env_file(services) -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert not re.search(r"xox[abp]-|xapp-", text), "a Slack token is written in compose.yaml"
    for name, service in services.items():
        environment = environment_of(service)
        for secret in SECRET_NAMES:
            value = environment.get(secret)
            # Allowed only as a reference to the same name in .env, with a message when it is missing.
            assert value is None or value.startswith(f"${{{secret}:?"), (
                f"{name} writes {secret} in compose.yaml"
            )
        assert "postgresql" not in str(environment.get("TANYA_DATABASE_URL", "")), name
    for name, service in tanya_services(services).items():
        assert service["env_file"] == [{"path": ".env", "required": True}], name
    # Only the tanya containers read the whole file.
    readers = {name for name, service in services.items() if "env_file" in service}
    assert readers == set(tanya_services(services))
    assert ".env" in (DEPLOY / ".gitignore").read_text(encoding="utf-8").split()


def test_compose_and_the_env_example_use_only_names_tanya_reads() -> None:
    known = known_setting_names()
    used: set[str] = set()
    for service in load_compose()["services"].values():
        used.update(environment_of(service))
    example = ENV_EXAMPLE.read_text(encoding="utf-8")
    used.update(read_env_file(ENV_EXAMPLE))
    used.update(re.findall(r"^#\s*([A-Z][A-Z0-9_]*)=", example, re.MULTILINE))  # optional, commented out
    ours = {name for name in used if name.startswith(("TANYA_", "SLACK_"))}
    unknown = sorted(ours - known)
    assert not unknown, f"not read by tanya (see bot/settings.py): {unknown}"


def test_the_env_example_connects_to_the_compose_services(services) -> None:
    values = read_env_file(ENV_EXAMPLE)
    for secret in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "POSTGRES_PASSWORD", "ELASTIC_PASSWORD"):
        assert values.get(secret), f"the example does not show {secret}"

    database = urlsplit(values["TANYA_DATABASE_URL"])
    postgres = environment_of(services["postgres"])
    assert database.scheme == "postgresql+psycopg"
    assert (database.hostname, database.port) == ("postgres", 5432)
    assert database.username == postgres["POSTGRES_USER"]
    assert database.password == values["POSTGRES_PASSWORD"]
    assert database.path == f"/{postgres['POSTGRES_DB']}"

    search = urlsplit(values["TANYA_DOCUMENT_STORE"])
    assert (search.scheme, search.hostname, search.port) == ("http", "elasticsearch", 9200)
    assert (search.username, search.password) == ("elastic", values["ELASTIC_PASSWORD"])
    # Written once: the URLs refer to the passwords instead of repeating them.
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    assert "${POSTGRES_PASSWORD}@postgres" in text and "${ELASTIC_PASSWORD}@elasticsearch" in text


def test_the_bot_environment_is_valid_for_tanya(monkeypatch, services) -> None:
    """What the tanya containers get (the env file, then compose's environment on top) passes Settings."""
    from bot.settings import Settings

    for name in list(os.environ):
        if name.startswith(("TANYA_", "SLACK_")):
            monkeypatch.delenv(name)
    for name in ("bot", "worker", "worker-cpu"):
        environment = {**read_env_file(ENV_EXAMPLE), **environment_of(services[name])}
        with monkeypatch.context() as patch:
            for key, value in environment.items():
                patch.setenv(key, value)
            settings = Settings()
        assert settings.resolved_database_url.startswith("postgresql+psycopg://"), name
        assert settings.document_store.startswith("http://"), name
        assert str(settings.home) == "/data", name
        assert settings.log_format == "json", name
        if name != "bot":
            # The worker's health check and Prometheus need its metrics server.
            port = settings.worker_metrics_port
            assert port > 0, name
            url = load_healthcheck().probe_url(services[name]["command"], environment)
            assert url == f"http://127.0.0.1:{port}/metrics", name


def test_the_header_commands_match_the_profiles(compose) -> None:
    header = COMPOSE_FILE.read_text(encoding="utf-8").split("\nname:", 1)[0]
    commands = [
        shlex.split(line.lstrip("# ").split("#")[0])
        for line in header.splitlines()
        if "docker compose" in line
    ]
    profiles = {
        profile for service in compose["services"].values() for profile in service.get("profiles", [])
    }
    for command in commands:
        named = {command[index + 1] for index, word in enumerate(command) if word == "--profile"}
        assert named <= profiles, command
