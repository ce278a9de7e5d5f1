"""`checkpoint_steps`: a training run killed part-way resumes from its last checkpoint, and ends where an
uninterrupted run ends (same data order, same schedule, same weights)."""

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


class Interrupted(Exception):
    """Stands for the process being stopped mid-run."""


def _train(checkpoint_dir: Path, folder: Path, chat: Any, *, stop_at: int | None = None) -> TrainResult:
    config = resolve_config(
        tiny_config(torch_threads=1, max_length=96, sft_max_steps=4, checkpoint_steps=2), checkpoint_dir
    )
    loaded = load_base_model(checkpoint_dir, config)
    rows = SplitRows(
        sft=[
            {
                "prompt": chat.prompt(
                    [{"role": "user", "content": f"Question {n}: how do I withdraw my vote?"}]
                ),
                "completion": chat.completion(f"Run tanya feedback {n} none."),
            }
            for n in range(8)
        ]
    )
    plan = StagePlan(sft=True, dpo=False, kto=False, kto_rows="", reason="test")

    def hook(record: dict[str, Any]) -> None:
        if stop_at is not None and record.get("step") == stop_at:
            raise Interrupted

    with RunMonitor(TrainingLog(None), show=False, hook=hook) as monitor:
        return train_adapter(loaded, rows, config, plan, folder, monitor)


def test_a_run_stopped_after_a_checkpoint_resumes_and_matches_an_uninterrupted_one(
    checkpoint_dir: Path, tmp_path: Path, chat: Any
) -> None:
    from safetensors.torch import load_file

    with pytest.raises(Interrupted):
        _train(checkpoint_dir, tmp_path / "resumed" / "adapter", chat, stop_at=3)
    saved = sorted(
        path.name
        for path in (tmp_path / "resumed" / "adapter.trainer" / "sft-checkpoints").glob("checkpoint-*")
    )
    assert saved == ["checkpoint-2"]  # step 3 never finished
    assert not (tmp_path / "resumed" / "adapter").exists()

    resumed = _train(checkpoint_dir, tmp_path / "resumed" / "adapter", chat)
    straight = _train(checkpoint_dir, tmp_path / "straight" / "adapter", chat)
    assert resumed.steps == straight.steps == {"sft": 4}
    a = load_file(tmp_path / "resumed" / "adapter" / "adapter_model.safetensors")
    b = load_file(tmp_path / "straight" / "adapter" / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        assert (a[name] - b[name]).abs().max().item() < 1e-5, name
