"""``python -m bot.train_launch``: one re-training run, as each of the processes a launcher starts.

    accelerate launch --config_file deploy/accelerate/ddp.yaml -m bot.train_launch --job-id 7
    python -m bot.train_launch --set sft_max_steps=10 --dry-run

Every process reads the same ``TANYA_*`` settings (the launcher passes its environment on), so the
command is the same on one GPU or eight. It lives in ``bot`` because it is a composition root: it turns
settings into the alignment package's config, which may not read the environment itself.

The run's main process is the only one that reads the job and the feedback and writes to the registry
(see ``alignment.pipeline.retrain``). It prints progress lines and writes the outcome for the worker that
launched it (``alignment.launch``); the worker, not this command, records the job's status. Run by hand,
the outcome is printed as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from alignment.chat_format import ChatFormat
from alignment.distributed import current_processes
from alignment.model import load_tokenizer, resolve_config
from bot.settings import Settings
from bot.training import LAUNCH_MODULE, parse_overrides, training_setup


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m {LAUNCH_MODULE}",
        description="Run one re-training of tanya's adapter (in every process a launcher such as "
        "`accelerate launch` starts).",
    )
    parser.add_argument(
        "--job-id", type=int, help="Train for this queued or running job, with its overrides."
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="Override an AlignmentConfig field (alignment/config.py), e.g. --set sft_max_steps=10.",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="Build the datasets and the stage plan, print them as JSON, and stop before training.",
    )
    parser.add_argument("--result", type=Path, help="Write the outcome here as JSON (the worker reads it).")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # --help exits here, before anything heavy is imported
    from alignment.launch import progress_printer, write_outcome  # heavy
    from alignment.pipeline import retrain  # heavy
    from bot.cli.application import quiet_libraries  # heavy
    from bot.service import Tanya  # heavy

    quiet_libraries()
    processes = current_processes()
    main_process = processes.is_main
    service = Tanya(Settings())
    config, _, paths = training_setup(service.settings)
    database = service.database if main_process else None
    overrides = processes.share(_job_overrides(database, args.job_id) if main_process else None)
    config = config.with_overrides({**overrides, **parse_overrides(args.overrides)})
    run_paths = processes.share(paths() if main_process else None)  # converts the bundled model once

    if args.dry_run:
        summary = _dry_run(database, config, run_paths) if main_process else None
        if main_process:
            print(json.dumps({**summary, **processes.describe()}, ensure_ascii=False, default=str))
        return 0
    hook = progress_printer(sys.stdout) if main_process else None
    outcome = retrain(
        database, config, run_paths, job_id=args.job_id, hook=hook, show_progress=False, processes=processes
    )
    if main_process:
        if args.result is not None:
            write_outcome(outcome, args.result)
        else:
            print(json.dumps(outcome.as_dict(), ensure_ascii=False, default=str))
    return 0


def _job_overrides(database: Any, job_id: int | None) -> dict[str, Any]:
    """The job's ``config["training"]`` overrides, as the in-process worker applies them."""
    if job_id is None:
        return {}
    from storage.models import TrainingJob  # heavy

    with database.session() as session:
        job = session.get(TrainingJob, job_id)
        if job is None:
            raise SystemExit(f"there is no training job {job_id}")
        return dict((job.config or {}).get("training") or {})


def _dry_run(database: Any, config: Any, paths: Any) -> dict[str, Any]:
    """What a run would train on and which stages it would run; nothing is trained or written."""
    from alignment.pipeline import prepare_data  # heavy
    from alignment.train import plan_stages  # heavy

    resolved = resolve_config(config, paths.base_model)
    data = prepare_data(database, ChatFormat.from_tokenizer(load_tokenizer(paths.base_model)), resolved)
    plan = plan_stages(data.train, resolved)
    return {
        "base_model": str(paths.base_model),
        "device": resolved.device,
        "data": data.stats(),
        "plan": {"stages": plan.stages, "reason": plan.reason},
    }


if __name__ == "__main__":
    sys.exit(main())
