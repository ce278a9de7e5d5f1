"""``tanya retrain``, ``tanya worker`` and ``tanya adapters``: the commands around re-training.

They turn settings into the alignment package's plain config objects, because nothing below ``bot``
reads the environment.
"""

from __future__ import annotations

import functools
import json
import signal
import threading
from collections.abc import Callable
from typing import Annotated, Any

import typer

from alignment.config import AlignmentConfig
from alignment.registry import AdapterIntegrityError, RegistryError, activate_version, list_versions, rollback
from bot.base_model import require_served_base
from bot.cli import console as out
from bot.cli.application import EXIT_FAILURE, app, cli_user, friendly_errors, make_service, report_error, say
from bot.observability.worker_metrics import instrument_runner, serve_worker_metrics
from bot.service import InputError
from bot.training import launcher_runner, parse_overrides, training_setup
from storage.jobs import claim_next_job, enqueue_job
from storage.models import JobStatus, TrainingJob

adapters_app = typer.Typer(help="Trained LoRA adapters: list, activate, roll back.", no_args_is_help=True)
app.add_typer(adapters_app, name="adapters")


def _print_job(job: Any) -> None:
    metrics = job.metrics or {}
    if job.status == "succeeded":
        say(metrics.get("message") or f"Training job #{job.id} finished.")
    elif job.status == "failed":
        report_error(f"training job #{job.id} failed: {(job.error or 'unknown error').splitlines()[0]}")
    else:
        say(f"Training job #{job.id} is {job.status}.")


@app.command()
@friendly_errors
def retrain(
    wait: Annotated[
        bool,
        typer.Option(
            "--wait", help="Run the job in this process (or follow the worker running it) until it ends."
        ),
    ] = False,
    settings: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="FIELD=VALUE",
            help="Override a training option for this run (a field of alignment/config.py), "
            "e.g. --set sft_epochs=2. Repeatable.",
        ),
    ] = None,
) -> None:
    """Queue a re-training run on the feedback so far; a running `tanya worker` picks it up."""
    from alignment.worker import Worker, retrain_runner, worker_name  # heavy

    try:
        overrides = parse_overrides(settings or [])
        AlignmentConfig().with_overrides(overrides)  # unknown or invalid values fail here, not in the worker
    except (SystemExit, ValueError, TypeError) as exc:
        raise InputError(f"--set: {exc}") from None
    service = make_service()
    with service.database.session() as session:
        job, created = enqueue_job(
            session,
            requested_by=cli_user(),
            reason="manual",
            config={"training": overrides} if overrides else None,
        )
        job_id, status = job.id, job.status
    if created:
        out.console.print(f"Queued training job #{job_id}.")
    else:
        out.console.print(f"Training job #{job_id} is already {status}; not queuing another.")
    if not wait:
        return
    config, worker_config, paths = training_setup(service.settings)
    with service.database.session() as session:
        claimed = claim_next_job(session, worker=worker_name())
        if claimed is not None:
            session.expunge(claimed)
    if claimed is not None:
        runner = retrain_runner(service.database, config, paths, show_progress=out.errors.is_terminal)
        finished = Worker(service.database, runner, worker_config).run_claimed(claimed)
        _print_job(finished)
        if claimed.id == job_id:
            raise typer.Exit(EXIT_FAILURE if finished.status == JobStatus.failed else 0)
    pause = threading.Event()
    with out.status(f"Waiting for training job #{job_id}…"):
        while True:
            with service.database.session() as session:
                row = session.get(TrainingJob, job_id)
                if row is not None and row.status not in (JobStatus.queued, JobStatus.running):
                    break
            pause.wait(2.0)
    _print_job(row)
    if row is not None and row.status == JobStatus.failed:
        raise typer.Exit(EXIT_FAILURE)


@app.command()
@friendly_errors
def worker(
    once: Annotated[bool, typer.Option("--once", help="Run the queued jobs, then exit.")] = False,
) -> None:
    """Run queued training jobs, and start runs by itself when enough new feedback has arrived."""
    from alignment.worker import Worker, retrain_runner  # heavy

    service = make_service()
    settings = service.settings
    config, worker_config, paths = training_setup(service.settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if settings.train_launcher:  # each job as `<launcher> -m bot.train_launch` (several GPUs)
        runner = launcher_runner(settings.train_launcher)
    else:
        runner = retrain_runner(service.database, config, paths, show_progress=out.errors.is_terminal)
    try:  # said at start-up, and again by every job it stops
        require_served_base(settings)
    except InputError as exc:
        out.error(str(exc))
    job_worker = Worker(
        service.database,
        instrument_runner(runner),
        worker_config,
        adapters_dir=settings.adapters_dir,
        on_finished=_print_job,
    )
    metrics_server = None
    if settings.worker_metrics_port:
        metrics_server = serve_worker_metrics(
            service.database, settings.metrics_host, settings.worker_metrics_port
        )
        say(f"Worker metrics on http://{settings.metrics_host}:{metrics_server.server_port}/metrics")
    if not once:
        schedule = (
            f"checks for new feedback every {worker_config.schedule_minutes:g} min"
            if worker_config.schedule_minutes
            else "scheduled runs off"
        )
        say(f"Worker {job_worker.name} waiting for training jobs ({schedule}).")
    try:
        ran = job_worker.serve(stop, once=once)
    finally:
        if metrics_server is not None:
            metrics_server.shutdown()
            metrics_server.server_close()
    say(f"Worker stopped after {ran} job(s).")


def _registry_call(call: Callable[..., Any], *args: Any) -> Any:
    try:
        return call(*args)
    except RegistryError as exc:
        raise InputError(str(exc)) from None
    except AdapterIntegrityError as exc:
        out.error(f"refused: {exc}")
        raise typer.Exit(EXIT_FAILURE) from None


@adapters_app.command("list")
@friendly_errors
def adapters_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Every trained adapter, newest first, with its status and gate result."""
    from rich.table import Table  # heavy

    service = make_service()
    with service.database.session() as session:
        rows = [
            {
                "id": version.id,
                "name": version.name,
                "status": str(version.status),
                "base_model": version.base_model,
                "created_at": version.created_at.isoformat(timespec="seconds"),
                "activated_at": version.activated_at.isoformat(timespec="seconds")
                if version.activated_at
                else None,
                "gate": (version.metrics or {}).get("gate", {}).get("reason"),
                "starter": bool((version.lineage or {}).get("starter")),
                "path": version.path,
            }
            for version in list_versions(session)
        ]
    if as_json:
        print(json.dumps(rows, ensure_ascii=False))
        return
    if not rows:
        out.console.print("No adapters yet: run `tanya retrain` once there is feedback.")
        return
    table = Table(box=None, pad_edge=False)
    for column in ("id", "name", "status", "created", "gate"):
        table.add_column(column, overflow="fold")
    styles = {"active": "bold green", "rejected": "red", "retired": "dim", "candidate": "yellow"}
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["name"],
            f"[{styles.get(row['status'], '')}]{row['status']}[/]",
            row["created_at"].replace("T", " ")[:16],
            "starter: shipped with tanya" if row["starter"] else (row["gate"] or ""),
        )
    out.console.print(table)


@adapters_app.command("activate")
@friendly_errors
def adapters_activate(
    adapter_id: Annotated[int, typer.Argument(help="The id shown by `tanya adapters list`.")],
) -> None:
    """Make an adapter the active one (its files are verified first); running bots switch before their next answer."""
    service = make_service()
    with service.database.session() as session:
        version = _registry_call(activate_version, session, adapter_id)
        name = version.name
    out.console.print(f"Adapter #{adapter_id} ({name}) is now active.")


@adapters_app.command("rollback")
@friendly_errors
def adapters_rollback(
    below_starter: Annotated[
        bool,
        typer.Option(
            "--below-starter", help="Also roll back the shipped starter adapter: the bare base model answers."
        ),
    ] = False,
) -> None:
    """Take the active adapter out of service and go back to the one before it (the starter is the floor)."""
    service = make_service()
    with service.database.session() as session:
        result = _registry_call(functools.partial(rollback, below_starter=below_starter), session)
    now = result.now_active or "the base model"
    out.console.print(f"Rolled back {result.rolled_back}; {now} answers from now on.")
