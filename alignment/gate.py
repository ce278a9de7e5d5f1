"""The evaluation gate: a candidate adapter replaces the active one only if it is measurably better.

"Better" is judged on feedback the candidate never trained on (the held-out questions), and "not
worse" on a fixed regression set of questions whose answers are known from the user guide. Both are
judged by likelihood; the held-out prompts are also answered and scored by F1 (``answer_quality``),
because likelihood alone promoted adapters that wrote wrong answers. The regression
check is what stops a batch of 👍 votes on wrong answers: the candidate learns the wrong answers, likes
them on the held-out copies of the same mistakes, and is caught because it now finds the documented
answers less likely.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from alignment.config import AlignmentConfig


@dataclass(frozen=True)
class Check:
    """One criterion of the gate and whether the candidate passed it."""

    name: str
    passed: bool
    detail: str


@dataclass
class GateResult:
    """The gate's verdict: promote or not, the scores compared, and every check with its reason."""

    promote: bool
    baseline: str  # "base" or the active adapter's name
    old: dict[str, float]
    new: dict[str, float]
    checks: list[Check] = field(default_factory=list)
    # Which stages' adapter is shipped, and every stage output's held-out scores, when the gate chose.
    stage_choice: dict[str, Any] | None = None

    @property
    def reason(self) -> str:
        if self.promote:
            text = "; ".join(check.detail for check in self.checks)
        else:
            text = self.failed or "nothing held out to compare on"
        return f"{self.stage_note}; {text}" if self.stage_note else text

    @property
    def stage_note(self) -> str:
        """Says so when the preference stage was left out, and why."""
        choice = self.stage_choice
        if not choice or choice.get("shipped") != "sft":
            return ""
        if choice.get("all_stages_failed"):
            return (
                f"SFT alone shipped, the preference stage left out (with it: {choice['all_stages_failed']})"
            )
        return (
            "SFT alone shipped, the preference stage left out (held-out answer F1 "
            f"{choice['sft_only']['answer_f1']:.1f} without it, {choice['all_stages']['answer_f1']:.1f} with it)"
        )

    @property
    def failed(self) -> str:
        return "; ".join(check.detail for check in self.checks if not check.passed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "promote": self.promote,
            "baseline": self.baseline,
            "old": self.old,
            "new": self.new,
            "checks": [{"name": c.name, "passed": c.passed, "detail": c.detail} for c in self.checks],
            "reason": self.reason,
            **({"stage_choice": self.stage_choice} if self.stage_choice else {}),
        }


def written_answers_count(metrics: dict[str, float]) -> int:
    """How many held-out corrections a variant's written-answer scores are based on."""
    return int(metrics.get("answer_count", 0))


def decide(
    old: dict[str, float], new: dict[str, float], config: AlignmentConfig, *, baseline: str
) -> GateResult:
    """Compare the candidate's metrics (``new``) with the active adapter's (``old``)."""
    checks: list[Check] = []
    improved: list[bool] = []
    if "answer_nll" in old and "answer_nll" in new:
        gain = old["answer_nll"] - new["answer_nll"]
        ok = gain >= config.gate_margin
        improved.append(ok)
        checks.append(
            Check(
                "held-out answers",
                ok,
                f"held-out answer loss {old['answer_nll']:.3f} → {new['answer_nll']:.3f} "
                f"({'-' if gain >= 0 else '+'}{abs(gain):.3f}, need -{config.gate_margin:g})",
            )
        )
    if "pair_accuracy" in old and "pair_accuracy" in new:
        # With held-out answers the pairs must only not get worse; on their own they must improve.
        needed = 0.0 if improved else config.gate_margin
        gain = new["pair_accuracy"] - old["pair_accuracy"]
        ok = gain >= needed
        if not improved:
            improved.append(ok)
        checks.append(
            Check(
                "held-out pairs",
                ok,
                f"pair accuracy {old['pair_accuracy']:.2f} → {new['pair_accuracy']:.2f}"
                + (f" (need +{needed:g})" if needed else " (must not drop)"),
            )
        )
    if "answer_f1" in old and "answer_f1" in new:
        # Written answers guard, they do not decide: a few dozen held-out prompts are too few to demand a
        # gain, but a candidate whose answers got clearly worse must not ship on likelihood alone.
        drop = old["answer_f1"] - new["answer_f1"]
        enough = written_answers_count(new) >= config.gate_min_written_answers
        ok = drop <= config.gate_f1_tolerance or not enough
        detail = f"held-out answer F1 {old['answer_f1']:.1f} → {new['answer_f1']:.1f}"
        if not enough:
            detail += f" ({written_answers_count(new)} held-out corrections: too few to decide on)"
        elif not ok:
            detail += f" (dropped {drop:.1f} points, tolerance {config.gate_f1_tolerance:g})"
        checks.append(Check("held-out written answers", ok, detail))
    if "regression_nll" in old and "regression_nll" in new:
        worse = new["regression_nll"] - old["regression_nll"]
        ok = worse <= config.regression_tolerance
        checks.append(
            Check(
                "regression set",
                ok,
                f"regression loss {old['regression_nll']:.3f} → {new['regression_nll']:.3f}"
                + ("" if ok else f" (worse by {worse:.3f}, tolerance {config.regression_tolerance:g})"),
            )
        )
    promote = bool(improved) and all(check.passed for check in checks)
    return GateResult(promote=promote, baseline=baseline, old=old, new=new, checks=checks)


def choose_stages(all_stages: GateResult, sft_alone: GateResult) -> dict[str, Any]:
    """Which adapter to ship when both the full run's and SFT's own were measured.

    One that passes the gate beats one that does not: a preference stage that costs the regression set
    should not throw away the SFT it was built on. Between two that both pass (or both fail), the one
    that writes the better held-out answers.
    """
    if all_stages.promote != sft_alone.promote:
        shipped = "sft" if sft_alone.promote else "all stages"
    else:
        shipped = "sft" if sft_alone.new["answer_f1"] > all_stages.new["answer_f1"] else "all stages"
    choice: dict[str, Any] = {"shipped": shipped, "all_stages": all_stages.new, "sft_only": sft_alone.new}
    if shipped == "sft" and not all_stages.promote:
        choice["all_stages_failed"] = all_stages.failed
    return choice
