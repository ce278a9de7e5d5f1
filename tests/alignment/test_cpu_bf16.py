"""`cpu_bf16`: CPU training with bf16 autocast trains the same LoRA weights, in fp32, from bf16 products."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from alignment.datasets import SplitRows
from alignment.model import load_base_model, resolve_config
from alignment.progress import RunMonitor, TrainingLog
from alignment.train import StagePlan, TrainResult, train_adapter
from tests.alignment.conftest import tiny_config

pytestmark = pytest.mark.model


def _train(checkpoint_dir: Path, folder: Path, chat: Any, *, cpu_bf16: bool) -> TrainResult:
    config = resolve_config(tiny_config(cpu_bf16=cpu_bf16, torch_threads=1, max_length=96), checkpoint_dir)
    loaded = load_base_model(checkpoint_dir, config)
    prompt = chat.prompt([{"role": "user", "content": "How do I withdraw my vote?"}])
    rows = SplitRows(
        sft=[{"prompt": prompt, "completion": chat.completion("Run tanya feedback 12 none.")}] * 4
    )
    plan = StagePlan(sft=True, dpo=False, kto=False, kto_rows="", reason="test")
    with RunMonitor(TrainingLog(None), show=False) as monitor:
        return train_adapter(loaded, rows, config, plan, folder, monitor)


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
