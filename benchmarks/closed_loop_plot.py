"""The closed-loop benchmark's plot: each score per round, with the prompting baseline as dashed lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

METRICS = ("f1", "exact_match", "contains_gold", "cites_gold")


def plot_rounds(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rounds = result["rounds"]
    figure, axis = plt.subplots(figsize=(7, 4.2))
    for metric in METRICS:
        xs = [row["round"] for row in rounds if metric in row]
        line = axis.plot(xs, [row[metric] for row in rounds if metric in row], marker="o", label=metric)[0]
        baseline = (result.get("baseline_few_shot") or {}).get(metric)
        if baseline is not None:
            axis.axhline(baseline, color=line.get_color(), linestyle="--", linewidth=0.8)
    for row in rounds:
        if row.get("poisoned"):
            axis.axvspan(row["round"] - 0.5, row["round"] + 0.5, color="red", alpha=0.08)
    axis.set_xticks([row["round"] for row in rounds])
    axis.set_xlabel("round (0: base model; dashed: base model with a few-shot prompt)")
    axis.set_ylabel("held-out score (%)")
    axis.set_ylim(0, 100)
    axis.set_title(f"tanya closed loop: {result['language']}, {result['scenario']}, {result['mode']} mode")
    axis.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
