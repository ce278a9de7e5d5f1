"""`start_from=starter`: a retrain continues from the shipped starter adapter instead of a fresh one."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from alignment import registry
from alignment.config import AlignmentConfig
from alignment.starter import STARTERS_DIR, starting_adapter
from tests.alignment.conftest import train_sft_rows
from tests.alignment.test_starter import BASE, package_starter


def _lora_weights(folder: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(folder / "adapter_model.safetensors")


def _train(checkpoint_dir: Path, folder: Path, chat: Any, **overrides: Any) -> None:
    train_sft_rows(checkpoint_dir, folder, chat, **overrides)


@pytest.mark.model
def test_sft_continues_from_the_initial_adapter(checkpoint_dir: Path, tmp_path: Path, chat: Any) -> None:
    import torch

    _train(checkpoint_dir, tmp_path / "starter", chat, lora_r=8)
    starter = _lora_weights(tmp_path / "starter")
    assert any(name.endswith("lora_B.weight") and tensor.abs().max() > 0 for name, tensor in starter.items())
    # With a learning rate too small to move anything, the result is its starting point: the starter's
    # weights (rank 8, kept although lora_r says 4) when continuing, LoRA's zero B matrices when not.
    _train(
        checkpoint_dir,
        tmp_path / "continued",
        chat,
        sft_learning_rate=1e-12,
        initial_adapter=str(tmp_path / "starter"),
    )
    continued = _lora_weights(tmp_path / "continued")
    assert continued.keys() == starter.keys()
    for name, tensor in starter.items():
        torch.testing.assert_close(continued[name], tensor, atol=1e-6, rtol=0)
    _train(checkpoint_dir, tmp_path / "fresh", chat, sft_learning_rate=1e-12)
    fresh = _lora_weights(tmp_path / "fresh")
    assert all(t.abs().max() < 1e-9 for name, t in fresh.items() if name.endswith("lora_B.weight"))
    assert {t.shape[0] for name, t in fresh.items() if name.endswith("lora_A.weight")} == {4}
    assert {t.shape[0] for name, t in continued.items() if name.endswith("lora_A.weight")} == {8}


def test_start_from_picks_the_shipped_starter_only_when_asked_and_intact(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    base = tmp_path / "models" / BASE
    fresh = AlignmentConfig(start_from="base")
    assert starting_adapter(fresh, base) == fresh
    chosen = starting_adapter(AlignmentConfig(), base)  # the default continues from the starter
    assert chosen.initial_adapter == str(STARTERS_DIR / BASE)
    explicit = AlignmentConfig(start_from="starter", initial_adapter="/somewhere")
    assert starting_adapter(explicit, base).initial_adapter == "/somewhere"
    with caplog.at_level(logging.INFO):
        other = starting_adapter(AlignmentConfig(start_from="starter"), tmp_path / "smollm2-135m-instruct")
        assert other.initial_adapter is None
        starters = tmp_path / "starters"
        weights = package_starter(starters) / registry.WEIGHTS_FILE
        weights.write_bytes(weights.read_bytes()[:-8])
        corrupt = starting_adapter(AlignmentConfig(start_from="starter"), base, starters_dir=starters)
        assert corrupt.initial_adapter is None
    messages = [record.getMessage() for record in caplog.records]
    assert any("no starter adapter ships for smollm2-135m-instruct" in m for m in messages)
    assert any("sha256" in m and "training a fresh adapter" in m for m in messages)
    with pytest.raises(ValueError, match="start_from"):
        AlignmentConfig(start_from="scratch")
