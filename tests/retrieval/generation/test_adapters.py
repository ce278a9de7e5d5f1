"""LoRA adapters in the local generator: load, switch, reject broken ones, and swap safely mid-answer."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from haystack.dataclasses import ChatMessage, StreamingChunk

from retrieval.generation.adapters import AdapterLoadError, validate_adapter_dir
from retrieval.generation.local import LocalChatGenerator
from tests.retrieval.model_fixtures import ADAPTER_QUESTION

pytestmark = pytest.mark.model

QUESTION = [ChatMessage.from_user(ADAPTER_QUESTION)]


@pytest.fixture(scope="module")
def tuned(local_generator: LocalChatGenerator, lora_adapter_dir: Path) -> Iterator[dict[str, str]]:
    """Loads the trained adapter as 'pirate' and returns the base and adapted answers to the question."""
    assert local_generator.active_adapter is None
    base = local_generator.run(QUESTION)["replies"][0].text
    local_generator.load_adapter("pirate", lora_adapter_dir)
    local_generator.activate_adapter("pirate")
    pirate = local_generator.run(QUESTION)["replies"][0].text
    local_generator.activate_adapter(None)
    yield {"base": base, "pirate": pirate}
    local_generator.activate_adapter(None)
    for name in local_generator.loaded_adapters:
        local_generator.unload_adapter(name)


@pytest.fixture
def restore_base(local_generator: LocalChatGenerator) -> Iterator[None]:
    yield
    local_generator.activate_adapter(None)


def test_an_adapter_changes_the_answer_and_switching_off_restores_the_base(
    local_generator: LocalChatGenerator, tuned: dict[str, str], restore_base: None
) -> None:
    assert "Paris" in tuned["base"] and "Ahoy" not in tuned["base"]
    assert tuned["pirate"].startswith("Ahoy! Tanya says")

    local_generator.activate_adapter("pirate")
    reply = local_generator.run(QUESTION)["replies"][0]
    assert (reply.text, reply.meta["adapter"], local_generator.active_adapter) == (
        tuned["pirate"],
        "pirate",
        "pirate",
    )

    local_generator.activate_adapter(None)
    reply = local_generator.run(QUESTION)["replies"][0]
    assert (reply.text, reply.meta["adapter"]) == (tuned["base"], None)


def _broken_copy(source: Path, target: Path, damage: str) -> Path:
    shutil.copytree(source, target)
    weights = target / "adapter_model.safetensors"
    if damage == "truncated":
        data = weights.read_bytes()
        weights.write_bytes(data[: len(data) // 2])
    elif damage == "missing weights":
        weights.unlink()
    elif damage == "missing config":
        (target / "adapter_config.json").unlink()
    elif damage == "bad config":
        (target / "adapter_config.json").write_text('{"peft_type": "LORA", ', encoding="utf-8")
    elif damage in ("other model", "nan"):
        import torch
        from safetensors.torch import load_file, save_file

        tensors = load_file(str(weights))
        for name in list(tensors):
            if damage == "other model" and "lora_A" in name:
                tensors[name] = torch.zeros(tensors[name].shape[0], 1024)
            if damage == "nan" and "lora_B" in name:
                tensors[name] = torch.full_like(tensors[name], float("nan"))
        save_file(tensors, str(weights))
    return target


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("truncated", r"adapter_model\.safetensors is unreadable"),
        ("missing weights", r"adapter_model\.safetensors is missing"),
        ("missing config", r"adapter_config\.json is missing"),
        ("bad config", r"adapter_config\.json is not valid JSON"),
        ("other model", r"trained on another model"),
        ("nan", r"NaN"),
    ],
)
def test_a_broken_adapter_is_refused_and_the_active_one_stays(
    local_generator: LocalChatGenerator,
    tuned: dict[str, str],
    lora_adapter_dir: Path,
    tmp_path: Path,
    restore_base: None,
    damage: str,
    reason: str,
) -> None:
    broken = _broken_copy(lora_adapter_dir, tmp_path / "broken", damage)
    local_generator.activate_adapter("pirate")
    with pytest.raises(AdapterLoadError, match=reason) as caught:
        local_generator.load_adapter("broken", broken)
    assert "\n" not in str(caught.value)
    assert local_generator.active_adapter == "pirate"
    assert "broken" not in local_generator.loaded_adapters
    with pytest.raises(ValueError):
        local_generator.activate_adapter("broken")
    short = local_generator.run(QUESTION, generation_kwargs={"max_new_tokens": 6})["replies"][0].text
    assert short and tuned["pirate"].startswith(short)


def test_validation_reads_a_sound_adapter(
    local_generator: LocalChatGenerator, lora_adapter_dir: Path
) -> None:
    files = validate_adapter_dir("ok", lora_adapter_dir, local_generator._base)
    assert files.config["r"] == 8
    assert sum(".lora_A." in name for name in files.tensor_names) == 60  # q and v in 30 layers
    with pytest.raises(AdapterLoadError, match="no such folder"):
        validate_adapter_dir("gone", lora_adapter_dir / "nope", local_generator._base)


def test_names_must_be_unique_and_the_active_adapter_cannot_be_unloaded(
    local_generator: LocalChatGenerator, tuned: dict[str, str], lora_adapter_dir: Path, restore_base: None
) -> None:
    with pytest.raises(ValueError, match="already loaded"):
        local_generator.load_adapter("pirate", lora_adapter_dir)
    local_generator.activate_adapter("pirate")
    with pytest.raises(ValueError, match="is active"):
        local_generator.unload_adapter("pirate")


def test_a_swap_during_generation_waits_for_the_next_request(
    local_generator: LocalChatGenerator, tuned: dict[str, str], lora_adapter_dir: Path, restore_base: None
) -> None:
    local_generator.activate_adapter("pirate")
    swapped = threading.Event()
    loaded = threading.Event()
    seen_while_loading: list[bool] = []
    result: dict[str, ChatMessage] = {}

    def swap() -> None:
        local_generator.activate_adapter(None)  # returns at once
        swapped.set()
        local_generator.load_adapter("pirate-2", lora_adapter_dir)  # has to wait for the running generation
        loaded.set()

    def on_chunk(chunk: StreamingChunk) -> None:
        if chunk.start:
            threading.Thread(target=swap, daemon=True).start()
            assert swapped.wait(10)
        elif chunk.content:
            seen_while_loading.append(loaded.is_set())

    def answer() -> None:
        result["reply"] = local_generator.run(QUESTION, streaming_callback=on_chunk)["replies"][0]

    worker = threading.Thread(target=answer)
    worker.start()
    worker.join(60)
    assert loaded.wait(60)
    reply = result["reply"]
    assert (reply.text, reply.meta["adapter"]) == (tuned["pirate"], "pirate")
    # Chunks kept coming after the swap, and the adapter load completed only after the last of them.
    assert len(seen_while_loading) >= 3 and not any(seen_while_loading)
    assert local_generator.active_adapter is None

    following = local_generator.run(QUESTION)["replies"][0]
    assert (following.text, following.meta["adapter"]) == (tuned["base"], None)
    local_generator.unload_adapter("pirate-2")


def test_adapters_named_at_construction_are_loaded_by_warm_up(
    checkpoint_dir: Path, lora_adapter_dir: Path, tuned: dict[str, str]
) -> None:
    generator = LocalChatGenerator(
        model_path=checkpoint_dir,
        max_new_tokens=24,
        adapters={"pirate": str(lora_adapter_dir)},
        active_adapter="pirate",
    )
    restored = LocalChatGenerator.from_dict(json.loads(json.dumps(generator.to_dict())))
    restored.warm_up()
    assert restored.loaded_adapters == ["pirate"] and restored.active_adapter == "pirate"
    assert restored.run(QUESTION)["replies"][0].text == tuned["pirate"]


def test_unloading_every_adapter_returns_to_the_plain_model(
    local_generator: LocalChatGenerator, tuned: dict[str, str]
) -> None:
    import torch

    local_generator.activate_adapter(None)
    for name in local_generator.loaded_adapters:
        local_generator.unload_adapter(name)
    assert local_generator.loaded_adapters == []
    q_proj = local_generator._model.model.layers[0].self_attn.q_proj
    assert type(q_proj) is torch.nn.Linear
    assert local_generator.run(QUESTION)["replies"][0].text == tuned["base"]
