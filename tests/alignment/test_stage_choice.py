"""The gate ships SFT alone when the preference stage made the written answers worse, and says so.

Real base model, real adapters (random LoRA weights) and the real likelihood scoring; only the grading of
written answers is replaced, so that which variant writes better answers is fixed by the test instead of
by what a few random weights happen to generate.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from alignment import pipeline
from alignment.pipeline import _evaluate, prepare_data
from storage import Database
from tests.alignment.conftest import AdapterFactory, tiny_config
from tests.alignment.seed import seed_good_feedback

pytestmark = pytest.mark.model


@pytest.fixture
def held_out(tmp_path: Path, chat: Any) -> Any:
    database = Database.open(f"sqlite:///{tmp_path / 'tanya.db'}")
    try:
        seed_good_feedback(database)
        # Hold out most questions, so that there are enough held-out corrections to decide on.
        return prepare_data(database, chat, tiny_config(eval_fraction=0.9))
    finally:
        database.dispose()


def _grade(f1_by_variant: dict[str, float]) -> Any:
    def written_answer_metrics(writer: Any, variant: str, rows: Any) -> dict:
        return {"answer_f1": f1_by_variant[variant], "answer_count": float(len(rows))}

    return written_answer_metrics


@pytest.mark.parametrize("sft_better", [True, False])
def test_the_better_writer_of_sft_alone_and_sft_plus_dpo_is_shipped(
    sft_better: bool,
    held_out: Any,
    chat: Any,
    checkpoint_dir: Path,
    make_adapter: AdapterFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert len(held_out.eval.written) >= 3
    staging = make_adapter(tmp_path / "staging", seed=1)
    sft_adapter = make_adapter(tmp_path / "trainer" / "sft-adapter", seed=2)
    full = (staging / "adapter_model.safetensors").read_bytes()
    sft_only = (sft_adapter / "adapter_model.safetensors").read_bytes()
    assert full != sft_only
    scores = {"base": 10.0, "candidate": 30.0, "sft_only": 45.0 if sft_better else 25.0}
    monkeypatch.setattr(pipeline, "written_answer_metrics", _grade(scores))
    # Likelihood is not the point here: a negative margin passes it, and few rows keep the scoring short.
    config = tiny_config(
        gate_min_written_answers=3, gate_written_answers=4, gate_margin=-10.0, max_eval_rows=2
    )

    gate = _evaluate(checkpoint_dir, held_out, chat, config, staging, None, sft_adapter)

    assert gate.stage_choice is not None
    assert gate.stage_choice["shipped"] == ("sft" if sft_better else "all stages")
    assert (staging / "adapter_model.safetensors").read_bytes() == (sft_only if sft_better else full)
    assert gate.new["answer_f1"] == (45.0 if sft_better else 30.0)
    assert gate.reason.startswith("SFT alone shipped") == sft_better
    assert gate.promote, gate.reason
    shutil.rmtree(tmp_path / "trainer")


def test_too_few_held_out_corrections_decide_nothing(
    held_out: Any, chat: Any, checkpoint_dir: Path, make_adapter: AdapterFactory, tmp_path: Path
) -> None:
    staging = make_adapter(tmp_path / "staging", seed=1)
    sft_adapter = make_adapter(tmp_path / "sft-adapter", seed=2)
    before = (staging / "adapter_model.safetensors").read_bytes()
    config = tiny_config(
        gate_min_written_answers=1000, gate_written_answers=2, gate_max_new_tokens=8, max_eval_rows=2
    )

    gate = _evaluate(checkpoint_dir, held_out, chat, config, staging, None, sft_adapter)

    assert gate.stage_choice is None
    assert (staging / "adapter_model.safetensors").read_bytes() == before
    written = next(check for check in gate.checks if check.name == "held-out written answers")
    assert written.passed and "too few to decide on" in written.detail
    assert gate.new["answer_count"] == 2
