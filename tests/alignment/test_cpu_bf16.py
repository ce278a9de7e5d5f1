"""`cpu_bf16`: CPU training with bf16 autocast trains the same LoRA weights, in fp32, from bf16 products."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from alignment.train import TrainResult
from tests.alignment.conftest import train_sft_rows

pytestmark = pytest.mark.model


def _train(checkpoint_dir: Path, folder: Path, chat: Any, *, cpu_bf16: bool) -> TrainResult:
    return train_sft_rows(checkpoint_dir, folder, chat, cpu_bf16=cpu_bf16)


def test_bf16_autocast_on_cpu_trains_fp32_lora_weights(
    checkpoint_dir: Path, tmp_path: Path, chat: Any
) -> None:
    from safetensors.torch import load_file

    fp32 = _train(checkpoint_dir, tmp_path / "fp32", chat, cpu_bf16=False)
    bf16 = _train(checkpoint_dir, tmp_path / "bf16", chat, cpu_bf16=True)
    assert bf16.steps == fp32.steps == {"sft": 3}
    first, second = fp32.final["sft"]["loss"], bf16.final["sft"]["loss"]
    # Same seed and rows: only the precision of the products differs, so the losses are close but not equal.
    assert first != second and abs(first - second) < 0.1 * first, (first, second)
    weights = load_file(tmp_path / "bf16" / "adapter_model.safetensors")
    assert weights and all(str(tensor.dtype) == "torch.float32" for tensor in weights.values())
