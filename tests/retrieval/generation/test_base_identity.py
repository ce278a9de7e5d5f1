"""An adapter records its base; the same base re-saved keeps its identity, another base does not."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from retrieval.generation.adapters import AdapterLoadError
from retrieval.generation.base_identity import (
    IDENTITY_FILE,
    BaseIdentity,
    identify_checkpoint,
    mismatch,
    recorded_identity,
    write_identity,
)


@pytest.fixture
def copy_of_base(checkpoint_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / checkpoint_dir.name
    shutil.copytree(checkpoint_dir, folder, ignore=shutil.ignore_patterns("*.safetensors"))
    return folder


def test_a_resaved_base_keeps_its_identity_and_another_one_differs(
    checkpoint_dir: Path, copy_of_base: Path
) -> None:
    original = identify_checkpoint(checkpoint_dir)
    assert original.name == checkpoint_dir.name and len(original.digest) == 64
    config_file = copy_of_base / "config.json"
    config = json.loads(config_file.read_text())
    config["transformers_version"] = "9.9.9"  # bookkeeping a re-save rewrites
    config_file.write_text(json.dumps(config))
    assert identify_checkpoint(copy_of_base).digest == original.digest
    config["rope_theta"] = float(config.get("rope_theta", 10000.0)) * 2  # the same shapes, another model
    config_file.write_text(json.dumps(config))
    assert identify_checkpoint(copy_of_base).digest != original.digest


def test_the_chat_template_is_part_of_the_identity(checkpoint_dir: Path, copy_of_base: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(copy_of_base)
    tokenizer.chat_template = "{% for m in messages %}{{ m.content }}{% endfor %}"
    assert identify_checkpoint(copy_of_base, tokenizer).digest != identify_checkpoint(checkpoint_dir).digest


def test_recorded_identities_are_read_back_and_checked(tmp_path: Path) -> None:
    base = BaseIdentity(name="qwen3-8b", digest="a" * 64)
    assert recorded_identity(tmp_path) is None and mismatch(tmp_path, base) is None  # older adapters
    write_identity(tmp_path, base)
    assert recorded_identity(tmp_path) == base and mismatch(tmp_path, base) is None
    other = BaseIdentity(name="qwen3-8b", digest="b" * 64)
    reason = mismatch(tmp_path, other)
    assert reason and "qwen3-8b (aaaaaaaaaaaa)" in reason and "qwen3-8b (bbbbbbbbbbbb)" in reason
    (tmp_path / IDENTITY_FILE).write_text("{not json")
    assert "unreadable" in (mismatch(tmp_path, base) or "")


@pytest.mark.model
def test_the_generator_refuses_an_adapter_of_another_base(
    local_generator, lora_adapter_dir: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    foreign = tmp_path / "foreign"
    shutil.copytree(lora_adapter_dir, foreign)
    write_identity(foreign, BaseIdentity(name="smollm2-135m-instruct", digest="0" * 64))
    with pytest.raises(AdapterLoadError, match="belongs to another base model: it was trained on"):
        local_generator.load_adapter("foreign", foreign)
    assert "foreign" not in local_generator.loaded_adapters
    own = tmp_path / "own"
    shutil.copytree(lora_adapter_dir, own)
    write_identity(own, local_generator.base_identity)
    local_generator.load_adapter("own", own)
    try:
        assert "own" in local_generator.loaded_adapters
    finally:
        local_generator.unload_adapter("own")
