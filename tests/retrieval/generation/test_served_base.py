"""Which served model is the base adapters are trained for: by checkpoint digest where the server's folder
is readable, by name otherwise; every mismatch says what differs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from retrieval.generation.served_base import (
    BaseModel,
    ServedBaseMismatchError,
    ServedModel,
    ServerUnavailableError,
    fetch_served_models,
    match_served_base,
)
from tests.bot.fake_vllm import BASE_MODEL, FakeVllm

QWEN = BaseModel(folder=Path("/models/Qwen3-8B"))
GEMMA = BaseModel(folder=Path("/data/models/gemma3-270m"), aliases=("google/gemma-3-270m", "gemma3-270m"))


@pytest.mark.parametrize(
    ("served", "base"),
    [
        (ServedModel(id="Qwen3-8B"), QWEN),
        (ServedModel(id="tanya-base", root="Qwen/Qwen3-8B"), QWEN),
        (ServedModel(id="qwen3-8b"), QWEN),
        (ServedModel(id="google/gemma-3-270m"), GEMMA),
        (ServedModel(id="x", root="gemma3-270m"), GEMMA),
    ],
    ids=["folder-name", "hub-root", "case", "bundled-hub-id", "bundled-name"],
)
def test_a_served_base_matches_by_any_name_the_base_goes_by(served: ServedModel, base: BaseModel) -> None:
    assert match_served_base([served], base) == served


def test_another_model_is_a_mismatch_naming_both_sides() -> None:
    with pytest.raises(ServedBaseMismatchError) as caught:
        match_served_base([ServedModel(id="tanya-base", root="Qwen/Qwen3-14B")], QWEN)
    message = str(caught.value)
    assert "'tanya-base' (from Qwen/Qwen3-14B)" in message and "Qwen3-8B (/models/Qwen3-8B)" in message
    assert "qwen3-14b" in message and "TANYA_BASE_MODEL" in message


def test_adapters_are_not_bases_and_the_requested_name_must_be_served() -> None:
    served = [ServedModel(id="Qwen3-8B"), ServedModel(id="tanya-3", root="/a/tanya-3", parent="Qwen3-8B")]
    assert match_served_base(served, QWEN, requested="Qwen3-8B").id == "Qwen3-8B"
    with pytest.raises(ServedBaseMismatchError, match=r"does not serve 'qwen'.*serves 'Qwen3-8B'"):
        match_served_base(served, QWEN, requested="qwen")
    with pytest.raises(ServedBaseMismatchError, match="lists no base model"):
        match_served_base(served[1:], QWEN)


def test_a_readable_server_folder_is_compared_by_digest_not_name(
    checkpoint_dir: Path, tmp_path: Path
) -> None:
    same = tmp_path / "served-under-another-name"
    shutil.copytree(checkpoint_dir, same, ignore=shutil.ignore_patterns("*.safetensors"))
    base = BaseModel(folder=checkpoint_dir)
    assert match_served_base([ServedModel(id="whatever", root=str(same))], base).root == str(same)

    other = tmp_path / checkpoint_dir.name  # the same name, another model of the same shapes
    shutil.copytree(same, other)
    config = json.loads((other / "config.json").read_text())
    config["rope_theta"] = float(config.get("rope_theta", 10000.0)) * 2
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(ServedBaseMismatchError, match=r"differs from .* in config or tokenizer"):
        match_served_base([ServedModel(id=checkpoint_dir.name, root=str(other))], base)


def test_the_model_list_is_read_over_http(vllm: FakeVllm) -> None:
    vllm.loaded["tanya-2"] = "/srv/adapters/tanya-2"
    models = fetch_served_models(f"{vllm.url}/v1")
    assert [(m.id, m.parent, m.max_model_len) for m in models] == [
        (BASE_MODEL, None, 4096),
        ("tanya-2", BASE_MODEL, 4096),
    ]
    vllm.models_status = 503
    with pytest.raises(ServerUnavailableError, match="HTTP 503"):
        fetch_served_models(f"{vllm.url}/v1")


def test_a_server_that_is_not_there_is_unavailable_not_a_mismatch() -> None:
    with pytest.raises(ServerUnavailableError, match="did not answer"):
        fetch_served_models("http://127.0.0.1:9/v1", timeout=2)
