"""The gate's decision rules, on hand-made metrics (the full runs are in test_retrain.py)."""

from __future__ import annotations

from alignment.config import AlignmentConfig
from alignment.gate import GateResult, choose_stages, decide

OLD = {"answer_nll": 2.0, "regression_nll": 1.5, "answer_f1": 30.0, "answer_count": 10.0}


def test_likelier_answers_with_clearly_worse_written_answers_are_rejected() -> None:
    new = {"answer_nll": 1.0, "regression_nll": 1.4, "answer_f1": 20.0, "answer_count": 10.0}
    gate = decide(OLD, new, AlignmentConfig(gate_f1_tolerance=2.0), baseline="base model")
    assert not gate.promote
    checks = {check.name: check.passed for check in gate.checks}
    assert checks == {"held-out answers": True, "held-out written answers": False, "regression set": True}
    assert "answer F1 30.0 → 20.0 (dropped 10.0 points, tolerance 2)" in gate.reason


def test_a_drop_within_the_tolerance_is_noise_and_does_not_block() -> None:
    new = {"answer_nll": 1.0, "regression_nll": 1.4, "answer_f1": 28.5, "answer_count": 10.0}
    assert decide(OLD, new, AlignmentConfig(gate_f1_tolerance=2.0), baseline="base model").promote
    assert not decide(OLD, new, AlignmentConfig(gate_f1_tolerance=1.0), baseline="base model").promote


def test_a_drop_on_too_few_held_out_corrections_is_reported_but_does_not_block() -> None:
    new = {"answer_nll": 1.0, "regression_nll": 1.4, "answer_f1": 0.0, "answer_count": 1.0}
    gate = decide({**OLD, "answer_count": 1.0}, new, AlignmentConfig(), baseline="base model")
    assert gate.promote
    assert "(1 held-out corrections: too few to decide on)" in gate.reason


def test_written_answers_alone_do_not_promote_without_a_likelihood_gain() -> None:
    new = {"answer_nll": 1.99, "regression_nll": 1.4, "answer_f1": 60.0}
    gate = decide(OLD, new, AlignmentConfig(gate_margin=0.02), baseline="base model")
    assert not gate.promote and "need -0.02" in gate.reason


def test_the_reason_says_when_sft_alone_was_shipped() -> None:
    new = {"answer_nll": 1.0, "regression_nll": 1.4, "answer_f1": 40.0}
    gate = decide(OLD, new, AlignmentConfig(), baseline="base model")
    gate.stage_choice = {"shipped": "sft", "sft_only": new, "all_stages": {**new, "answer_f1": 25.0}}
    assert gate.reason.startswith("SFT alone shipped, the preference stage left out")
    assert "F1 40.0 without it, 25.0 with it" in gate.reason
    assert gate.as_dict()["stage_choice"]["shipped"] == "sft"


def _judged(answer_nll: float, regression_nll: float, answer_f1: float) -> GateResult:
    new = {"answer_nll": answer_nll, "regression_nll": regression_nll, "answer_f1": answer_f1}
    return decide(OLD, new, AlignmentConfig(), baseline="base model")


def test_sft_alone_ships_when_the_preference_stage_fails_the_regression_set() -> None:
    all_stages, sft_alone = _judged(1.0, 1.6, 45.0), _judged(1.1, 1.45, 38.0)
    assert not all_stages.promote and sft_alone.promote
    choice = choose_stages(all_stages, sft_alone)
    assert choice["shipped"] == "sft", "an adapter that passes beats a better writer that does not"
    sft_alone.stage_choice = choice
    assert sft_alone.reason.startswith(
        "SFT alone shipped, the preference stage left out (with it: regression"
    )
    assert "1.500 → 1.600 (worse by 0.100" in sft_alone.reason


def test_between_two_that_pass_the_better_writer_ships() -> None:
    assert choose_stages(_judged(1.0, 1.4, 45.0), _judged(1.1, 1.4, 38.0))["shipped"] == "all stages"
    failing = _judged(1.0, 1.9, 45.0)
    assert choose_stages(failing, failing)["shipped"] == "all stages", "nothing passes: nothing to prefer"
