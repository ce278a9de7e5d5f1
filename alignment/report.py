"""What a run leaves next to its adapter: ``report.png``, ``summary.md`` and ``summary.json``.

The plot answers the three questions an admin asks about a run: did training converge (loss per
stage), did the preference stage separate good from bad answers (DPO/KTO reward margin and accuracy),
and is the new adapter better than the old one (gate metrics side by side).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignment.progress import TrainingLog

PLOT_FILE = "report.png"
SUMMARY_MD = "summary.md"
SUMMARY_JSON = "summary.json"

_GATE_LABELS = {
    "answer_nll": "held-out answer loss ↓",
    "regression_nll": "regression loss ↓",
    "pair_accuracy": "pair accuracy ↑",
    "reward_margin": "reward margin ↑",
    "thumb_reward_gap": "thumb reward gap ↑",
    "answer_f1": "held-out written answers, F1 % ↑",
    "answer_exact": "held-out written answers, exact % ↑",
    "answer_contains": "held-out written answers, contain the approved answer % ↑",
}
_PERCENT = {"answer_f1", "answer_exact", "answer_contains"}  # 0-100: kept off the plot's shared axis


@dataclass(frozen=True)
class ReportFiles:
    """The files a run's report leaves next to its adapter."""

    plot: Path
    markdown: Path
    json: Path


def plot_run(log: TrainingLog, gate: dict[str, Any] | None, path: Path) -> Path:
    import matplotlib  # heavy

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # heavy

    figure, (losses, rewards, metrics) = plt.subplots(1, 3, figsize=(15, 4.2))
    for stage in ("sft", "dpo", "kto"):
        records = [record for record in log.stage(stage) if "loss" in record]
        if records:
            losses.plot(
                [r["step"] for r in records], [r["loss"] for r in records], marker=".", label=stage.upper()
            )
    losses.set(title="Training loss", xlabel="step", ylabel="loss")
    if losses.lines:
        losses.legend()
    else:
        losses.text(0.5, 0.5, "no training steps", ha="center", transform=losses.transAxes)

    for stage in ("dpo", "kto"):
        records = [record for record in log.stage(stage) if "rewards/margins" in record]
        if records:
            steps = [r["step"] for r in records]
            rewards.plot(
                steps, [r["rewards/margins"] for r in records], marker=".", label=f"{stage.upper()} margin"
            )
            if "rewards/accuracies" in records[0]:
                rewards.plot(
                    steps,
                    [r["rewards/accuracies"] for r in records],
                    ls="--",
                    label=f"{stage.upper()} accuracy",
                )
    rewards.set(title="Preference reward margin / accuracy", xlabel="step")
    if rewards.lines:
        rewards.legend()
    else:
        rewards.text(0.5, 0.5, "no preference stage", ha="center", transform=rewards.transAxes)

    keys = [
        key
        for key in _GATE_LABELS
        if gate and key not in _PERCENT and key in gate.get("old", {}) and key in gate.get("new", {})
    ]
    if keys and gate:
        positions = range(len(keys))
        metrics.barh(
            [p + 0.2 for p in positions],
            [gate["old"][k] for k in keys],
            0.4,
            label=f"old ({gate['baseline']})",
        )
        metrics.barh(
            [p - 0.2 for p in positions], [gate["new"][k] for k in keys], 0.4, label="new (candidate)"
        )
        metrics.set_yticks(list(positions), [_GATE_LABELS[k] for k in keys])
        metrics.legend()
        verdict = "promoted" if gate.get("promote") else "rejected"
        metrics.set_title(f"Evaluation gate: {verdict}")
    else:
        metrics.set_title("Evaluation gate")
        metrics.text(0.5, 0.5, "not evaluated", ha="center", transform=metrics.transAxes)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


_REASONS = {
    "too_long": "too long to train on, even with their sources shortened",
    "tied_votes": "with tied votes",
    "private": "from private channels or direct messages (not allowed for training)",
    "no_prompt": "without a stored prompt",
    "not_found_reply": 'that were a "nothing found" reply',
}
_FITS = {
    "sources_dropped": "uncited sources dropped",
    "history_dropped": "earlier thread turns dropped",
    "sources_shortened": "cited sources shortened",
}


def data_notes(data: dict[str, Any], max_length: int | None = None) -> str:
    """What the run left out and what it shortened, in words an admin can act on ("" when nothing).

    "0 training answers" alone reads like nobody gave feedback; "6 answers too long to train on" says
    what to change.
    """
    parts = []
    excluded = data.get("excluded") or {}
    if excluded:
        items = []
        for reason, count in excluded.items():
            label = _REASONS.get(reason, reason.replace("_", " "))
            if reason == "too_long" and max_length:
                label += f" (over {max_length:,} tokens; raise with --set max_length=…)"
            items.append(f"{count} {'answer' if count == 1 else 'answers'} {label}")
        parts.append("Left out: " + "; ".join(items) + ".")
    fitted = data.get("fitted") or {}
    if fitted:
        parts.append(
            "Shortened to fit the training length: "
            + "; ".join(
                f"{count} with {_FITS.get(kind, kind.replace('_', ' '))}" for kind, count in fitted.items()
            )
            + "."
        )
    return " ".join(parts)


def _markdown(summary: dict[str, Any]) -> str:
    lines = [f"# {summary['adapter']}: {summary['outcome']}", ""]
    lines.append(
        f"Base model `{summary['base_model']}`; stages: {', '.join(summary['plan']['stages']) or 'none'} "
        f"({summary['plan']['reason']})."
    )
    data = summary["data"]
    lines += ["", "| rows | train | held out |", "|---|---|---|"]
    for kind in ("sft", "dpo", "kto"):
        lines.append(f"| {kind.upper()} | {data['train'][kind]} | {data['eval'][kind]} |")
    notes = data_notes(data, (summary.get("config") or {}).get("max_length"))
    if notes:
        lines += ["", notes]
    gate = summary.get("gate")
    if gate:
        lines += ["", f"## Gate (against {gate['baseline']})", "", "| metric | old | new |", "|---|---|---|"]
        for key, label in _GATE_LABELS.items():
            if key in gate["old"] and key in gate["new"]:
                digits = 1 if key in _PERCENT else 4
                lines.append(f"| {label} | {gate['old'][key]:.{digits}f} | {gate['new'][key]:.{digits}f} |")
        lines += ["", f"Decision: **{'promote' if gate['promote'] else 'reject'}** — {gate['reason']}."]
    lines += [
        "",
        f"Training time: {sum(summary['training']['seconds'].values()):.0f}s "
        f"({', '.join(f'{k} {v} steps' for k, v in summary['training']['steps'].items())}).",
    ]
    return "\n".join(lines) + "\n"


def write_report(folder: Path, summary: dict[str, Any], log: TrainingLog) -> ReportFiles:
    """Write the plot and both summaries into ``folder`` (the adapter's staging folder)."""
    files = ReportFiles(folder / PLOT_FILE, folder / SUMMARY_MD, folder / SUMMARY_JSON)
    plot_run(log, summary.get("gate"), files.plot)
    files.markdown.write_text(_markdown(summary), encoding="utf-8")
    files.json.write_text(
        json.dumps(summary, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8"
    )
    return files
