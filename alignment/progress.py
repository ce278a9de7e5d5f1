"""Watching a training run: a rich progress bar, a JSON-lines training log, and a hook for the job row.

One ``TrainerCallback`` serves all three stages (SFT, DPO, KTO). The log is the source of the report's
plots, so every ``on_log`` record is written with the stage it belongs to; the hook lets the worker
publish the current stage and step to the database, where ``tanya`` and Slack can show it.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from transformers import TrainerCallback

StageHook = Callable[[dict[str, Any]], None]


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class TrainingLog:
    """Appends one JSON object per logged step to ``training_log.jsonl`` and keeps them in memory."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.records: list[dict[str, Any]] = []
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        record = {key: _clean(value) for key, value in record.items()}
        self.records.append(record)
        if self.path is not None:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")

    def stage(self, name: str) -> list[dict[str, Any]]:
        return [record for record in self.records if record.get("stage") == name and "step" in record]


class RunMonitor:
    """The progress display and the log of one run; hand ``callback(stage)`` to each trainer."""

    def __init__(
        self,
        log: TrainingLog,
        *,
        console: Console | None = None,
        show: bool = True,
        hook: StageHook | None = None,
    ) -> None:
        self.log = log
        self.hook = hook
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=self.console,
            disable=not show,
            transient=False,
        )

    def __enter__(self) -> RunMonitor:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def event(self, stage: str, **fields: Any) -> None:
        """A run-level event (data counts, gate result) for the log and the hook."""
        record = {"stage": stage, "time": time.time(), **fields}
        self.log.write(record)
        if self.hook is not None:
            self.hook(record)

    def callback(self, stage: str) -> TrainerCallback:
        return _StageCallback(self, stage)


class _StageCallback(TrainerCallback):
    def __init__(self, monitor: RunMonitor, stage: str) -> None:
        self.monitor = monitor
        self.stage = stage
        self.task: Any = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.task = self.monitor.progress.add_task(self.stage.upper(), total=state.max_steps, status="")
        self.monitor.event(self.stage, event="begin", max_steps=state.max_steps)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.task is not None:
            self.monitor.progress.update(self.task, completed=state.global_step)

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        logs = dict(logs or {})
        if "train_runtime" in logs:  # the end-of-training summary, not a step
            self.monitor.event(self.stage, event="end", **logs)
            return
        record = {"stage": self.stage, "step": state.global_step, "time": time.time(), **logs}
        self.monitor.log.write(record)
        loss = logs.get("loss")
        if self.task is not None and isinstance(loss, int | float):
            status = f"loss {loss:.3f}"
            if "rewards/margins" in logs:
                status += f"  margin {logs['rewards/margins']:.3f}"
            self.monitor.progress.update(self.task, status=status)
        if self.monitor.hook is not None:
            self.monitor.hook({"stage": self.stage, "step": state.global_step, "max_steps": state.max_steps})
