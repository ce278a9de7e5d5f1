"""The parts of the QLoRA GPU check that need no GPU, run on the CPU so the prepared command does not
first fail on a GPU machine's few minutes: the adapter check and in-process answer, the estimate."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import train_qlora_gpu

pytestmark = pytest.mark.model


def test_the_new_adapter_passes_vllm_rules_and_answers_in_process(
    checkpoint_dir: Path, lora_adapter_dir: Path
) -> None:
    tokenizer = train_qlora_gpu._tokenizer(checkpoint_dir)
    answer = train_qlora_gpu.answer_with_adapter(checkpoint_dir, lora_adapter_dir, tokenizer, device="cpu")
    assert answer["vllm_refusals"] == [] and answer["answer_chars"] > 0


def test_the_retrain_estimate_shows_its_arithmetic() -> None:
    results = {
        "tanya": {"sft": {"tokens_per_s": 30000.0}, "dpo": {"tokens_per_s": 20000.0}},
        "load_seconds": {"tanya": 40.0},
    }
    estimate = train_qlora_gpu.retrain_estimate(results, {"answer_seconds": 1.0, "load_seconds": 20.0}, 2048)
    # SFT 480·1500·3/30000 = 72 s, DPO 320·2·1500·2/20000 = 96 s, scoring 2·200·1500/90000 ≈ 7 s,
    # answers 64 s, loads 60 s: about 299 s.
    assert estimate["minutes"] == pytest.approx(299 / 60, abs=0.1)
    assert estimate["arithmetic"].startswith("SFT 72 s + DPO 96 s")


def test_without_cuda_it_says_so_and_measures_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(sys, "argv", ["train_qlora_gpu.py"])
    with pytest.raises(SystemExit) as stopped:
        train_qlora_gpu.main()
    assert stopped.value.code == 2
