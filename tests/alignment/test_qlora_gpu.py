"""The CUDA path: QLoRA (bitsandbytes 4-bit NF4, bf16 compute). Skipped, with the reason, without CUDA."""

from __future__ import annotations

from pathlib import Path

import pytest

from alignment.datasets import SplitRows
from alignment.model import load_base_model, resolve_config
from alignment.progress import RunMonitor, TrainingLog
from alignment.train import StagePlan, train_adapter
from tests.alignment.conftest import tiny_config

pytestmark = [pytest.mark.gpu, pytest.mark.model]


def _unavailable() -> str | None:
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device: QLoRA (bitsandbytes 4-bit NF4) is a CUDA-only path; CPU training is fp32 LoRA"
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        return "bitsandbytes is not installed (pip install 'tanya[gpu]')"
    return None


@pytest.fixture(autouse=True)
def _needs_cuda() -> None:
    reason = _unavailable()
    if reason:
        pytest.skip(reason)


def test_qlora_loads_in_4bit_and_trains_sft_then_dpo(checkpoint_dir: Path, tmp_path: Path, chat) -> None:  # type: ignore[no-untyped-def]
    import torch

    config = resolve_config(tiny_config(device="cuda", batch_size=2), checkpoint_dir)
    assert config.quantize_4bit and config.gradient_checkpointing
    loaded = load_base_model(checkpoint_dir, config)
    assert getattr(loaded.model, "is_loaded_in_4bit", False)
    assert loaded.model.config.quantization_config.bnb_4bit_compute_dtype == torch.bfloat16
    assert loaded.model.config.quantization_config.bnb_4bit_quant_type == "nf4"

    prompt = chat.prompt([{"role": "user", "content": "How do I withdraw my vote?"}])
    good, bad = chat.completion("Run tanya feedback 12 none."), chat.completion("You cannot.")
    rows = SplitRows(
        sft=[{"prompt": prompt, "completion": good}] * 4,
        dpo=[{"prompt": prompt, "chosen": good, "rejected": bad}] * 4,
    )
    plan = StagePlan(sft=True, dpo=True, kto=False, kto_rows="", reason="test")
    with RunMonitor(TrainingLog(None), show=False) as monitor:
        result = train_adapter(loaded, rows, config, plan, tmp_path / "adapter", monitor)
    assert result.steps == {"sft": 3, "dpo": 2}
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
