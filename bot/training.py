"""Re-training, composed from the settings: alignment configs, the base checkpoint, the launcher.

Shared by the commands that start runs (``bot.cli.training``) and by the process a launcher starts
(``bot.train_launch``). Nothing below ``bot`` reads the environment, so the settings become the alignment
package's plain config objects here. The pipeline, the worker, the launcher and the checkpoint code are
imported inside the functions: ``tanya --help`` and the Slack bot should not pay for torch, TRL or the
model conversion code.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from alignment.config import AlignmentConfig
from bot.base_model import base_checkpoint, is_served, require_served_base
from bot.settings import Settings

LAUNCH_MODULE = "bot.train_launch"


def training_setup(settings: Settings):  # type: ignore[no-untyped-def]
    """Settings → the alignment package's plain config objects (nothing below bot reads the environment)."""
    from alignment.pipeline import RunPaths  # heavy
    from alignment.worker import WorkerConfig  # heavy

    config = AlignmentConfig(
        include_private=settings.train_on_private,
        device=settings.train_device,
        cpu_bf16=settings.train_cpu_bf16,
        gpu_memory_gib=settings.train_gpu_memory_gib,
        start_from=settings.train_from,
        min_sft_rows=settings.train_min_answers,
        gate_margin=settings.gate_margin,
        regression_tolerance=settings.gate_regression_tolerance,
        served_max_lora_rank=settings.server_max_lora_rank if is_served(settings) else None,
    )
    worker_config = WorkerConfig(
        poll_seconds=settings.worker_poll_seconds,
        stale_after_seconds=settings.worker_stale_minutes * 60,
        schedule_minutes=settings.train_schedule_minutes,
        min_new_feedback=settings.train_min_new_feedback,
    )

    def paths() -> RunPaths:
        return RunPaths(base_model=training_base(settings), adapters_dir=settings.adapters_dir)

    return config, worker_config, paths


def training_base(settings: Settings) -> Path:
    """The checkpoint adapters are trained on: TANYA_BASE_MODEL (``bot.base_model``), after checking that
    a server answers with that very base; a server serving another base stops the run here."""
    require_served_base(settings)
    return base_checkpoint(settings)


def launch_command(launcher: str, job_id: int, result: Path) -> list[str]:
    """The command line a worker runs for a job: the launcher, then this module with the job."""
    parts = shlex.split(launcher)
    if not parts:
        raise ValueError("the training launcher is empty")
    return [*parts, "-m", LAUNCH_MODULE, "--job-id", str(job_id), "--result", str(result)]


def launcher_runner(launcher: str) -> Any:
    """A worker runner that runs each job under `launcher` (see ``alignment.launch``)."""
    from alignment.launch import launched_runner  # heavy

    launch_command(launcher, 0, Path("check"))  # an empty launcher fails here, at start-up
    return launched_runner(lambda job_id, result: launch_command(launcher, job_id, result))


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``FIELD=VALUE`` pairs; values are read as JSON when they are JSON (numbers, booleans), else text."""
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"--set needs FIELD=VALUE, not {item!r}")
        try:
            overrides[key.strip()] = json.loads(raw)
        except ValueError:
            overrides[key.strip()] = raw
    return overrides
