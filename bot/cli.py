"""The ``tanya`` command.

Every failure a user can cause or fix (an empty question, a missing file, a database that is not a
database, a store that does not answer) ends as one line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import functools
import getpass
import json
import logging
import os
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from bot import console as out
from bot.errors import describe, user_errors
from bot.service import InputError, Tanya
from bot.settings import Settings

app = typer.Typer(
    name="tanya",
    help="Answers questions from your team's documents, and learns from 👍/👎.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")

F = TypeVar("F", bound=Callable[..., Any])

EXIT_INPUT = 2
EXIT_FAILURE = 1


def _quiet_libraries() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    logging.basicConfig(
        level=os.environ.get("TANYA_LOG_LEVEL", "WARNING").upper(),
        format="%(levelname)s %(name)s: %(message)s",
    )
    for noisy in (
        "httpx",
        "haystack",
        "haystack_integrations",
        "transformers",
        "sentence_transformers",
        "alembic",
        "elastic_transport",
        "elasticsearch",
    ):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def friendly_errors(command: F) -> F:
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except InputError as exc:
            out.error(str(exc))
            raise typer.Exit(EXIT_INPUT) from None
        except KeyboardInterrupt:
            out.error("interrupted")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            if os.environ.get("TANYA_DEBUG"):
                raise
            if isinstance(exc, user_errors()):
                out.error(describe(exc))
            else:
                logging.getLogger("tanya").debug("unexpected failure", exc_info=True)
                out.error(f"unexpected {type(exc).__name__}: {describe(exc)} (set TANYA_DEBUG=1 for details)")
            raise typer.Exit(EXIT_FAILURE) from None

    return wrapper  # type: ignore[return-value]


def _service() -> Tanya:
    _quiet_libraries()
    return Tanya(Settings())


def _cli_user() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli:unknown"


@app.command()
@friendly_errors
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders: Markdown, text, HTML, PDF.")],
) -> None:
    """Add documents to the knowledge base (re-ingesting unchanged files is free)."""
    from bot.ingest_view import run_ingest

    report = run_ingest(_service(), paths)
    if report.files_skipped and not (report.files_indexed or report.files_unchanged):
        raise typer.Exit(EXIT_FAILURE)


@app.command()
@friendly_errors
def search(
    question: Annotated[
        str, typer.Argument(help="The question, or - to read one question per line from stdin.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    top_k: Annotated[int | None, typer.Option("--top-k", "-k", min=1, max=100)] = None,
) -> None:
    """Show the sources retrieval finds for a question, without generating an answer."""
    service = _service()
    if question == "-":
        for line in sys.stdin:
            text = line.strip()
            if not text:
                continue
            sources = service.search(text, top_k=top_k)
            print(
                json.dumps({"question": text, "sources": [s.as_dict() for s in sources]}, ensure_ascii=False)
            )
        return
    sources = service.search(question, top_k=top_k)
    if as_json:
        print(
            json.dumps(
                {"question": question.strip(), "sources": [s.as_dict() for s in sources]}, ensure_ascii=False
            )
        )
    elif not sources:
        out.console.print("Nothing relevant found.")
    else:
        out.console.print(out.sources_table(sources, show_scores=True))


@app.command()
@friendly_errors
def ask(
    question: Annotated[str, typer.Argument(help="What you want to know.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Answer a question from the documents, citing sources."""
    service = _service()
    printer = None if as_json else out.TokenPrinter()
    answer = service.ask(
        question, user_id=_cli_user(), streaming_callback=printer.callback if printer else None
    )
    if as_json:
        print(json.dumps(answer.as_json(), ensure_ascii=False))
        return
    out.print_answer(answer, streamed=bool(printer and printer.printed))


@app.command()
@friendly_errors
def chat() -> None:
    """Ask questions in a loop; rate answers with + and -, correct them with !fix <text>."""
    from bot.chat import ChatSession

    ChatSession(_service(), user_id=_cli_user()).run()


class Rating(StrEnum):
    up = "up"
    down = "down"
    none = "none"


@app.command()
@friendly_errors
def feedback(
    interaction_id: Annotated[int, typer.Argument(help="The answer number shown after each answer.")],
    rating: Annotated[Rating, typer.Argument(help="up, down, or none to withdraw your vote.")],
) -> None:
    """Rate an answer (one vote per person; rating again changes it)."""
    service = _service()
    if rating is Rating.none:
        removed = service.unrate(interaction_id, user_id=_cli_user())
        out.console.print("Vote withdrawn." if removed else "You had not rated that answer.")
        return
    service.rate(interaction_id, user_id=_cli_user(), up=rating is Rating.up, source="cli")
    out.console.print(f"Recorded {'👍' if rating is Rating.up else '👎'} for answer #{interaction_id}.")


@app.command()
@friendly_errors
def status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Documents, answers, votes and the active adapter."""
    stats = _service().status()
    if as_json:
        print(json.dumps(stats, ensure_ascii=False))
        return
    for key, value in stats.items():
        out.console.print(f"[bold]{key.replace('_', ' ')}[/]: {value if value is not None else '—'}")


@db_app.command("upgrade")
@friendly_errors
def db_upgrade() -> None:
    """Apply database migrations (needed after upgrading tanya on PostgreSQL)."""
    from storage import Database

    _quiet_libraries()
    settings = Settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    database = Database(settings.resolved_database_url)
    database.check()
    before = database.current_revision()
    database.upgrade()
    after = database.current_revision()
    if before == after:
        out.console.print(f"{database.description} is up to date (revision {after}).")
    else:
        out.console.print(f"Upgraded {database.description} from {before or 'empty'} to {after}.")


@app.command()
@friendly_errors
def serve(
    host: Annotated[str, typer.Option(help="Interface for HTTP mode (ignored in Socket Mode).")] = "0.0.0.0",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port for HTTP mode.")] = 3000,
) -> None:
    """Run the Slack bot: Socket Mode when SLACK_APP_TOKEN is set, else HTTP on /slack/events."""
    from bot.slack.serve import serve as run_slack

    _quiet_libraries()
    out.console.print("Loading tanya…")
    run_slack(Settings(), host=host, port=port, on_ready=lambda where: out.console.print(f"tanya is {where}"))
    out.console.print("tanya stopped.")


# -- re-training: retrain, worker, adapters ---------------------------------------------------------

adapters_app = typer.Typer(help="Trained LoRA adapters: list, activate, roll back.", no_args_is_help=True)
app.add_typer(adapters_app, name="adapters")


def _training_setup(service: Tanya):  # type: ignore[no-untyped-def]
    """Settings → the alignment package's plain config objects (nothing below bot reads the environment)."""
    from alignment.config import AlignmentConfig
    from alignment.pipeline import RunPaths
    from alignment.worker import WorkerConfig

    settings = service.settings
    config = AlignmentConfig(
        include_private=settings.train_on_private,
        device=settings.train_device,
        min_sft_rows=settings.train_min_answers,
        gate_margin=settings.gate_margin,
        regression_tolerance=settings.gate_regression_tolerance,
    )
    worker_config = WorkerConfig(
        poll_seconds=settings.worker_poll_seconds,
        stale_after_seconds=settings.worker_stale_minutes * 60,
        schedule_minutes=settings.train_schedule_minutes,
        min_new_feedback=settings.train_min_new_feedback,
    )

    def paths() -> RunPaths:
        from retrieval.checkpoint import ensure_checkpoint

        base = Path(settings.generator) if settings.generator and Path(settings.generator).is_dir() else None
        return RunPaths(
            base_model=base or ensure_checkpoint(settings.models_dir), adapters_dir=settings.adapters_dir
        )

    return config, worker_config, paths


def _print_job(job: Any) -> None:
    metrics = job.metrics or {}
    if job.status == "succeeded":
        out.console.print(metrics.get("message") or f"Training job #{job.id} finished.")
    elif job.status == "failed":
        out.error(f"training job #{job.id} failed: {(job.error or 'unknown error').splitlines()[0]}")
    else:
        out.console.print(f"Training job #{job.id} is {job.status}.")


@app.command()
@friendly_errors
def retrain(
    wait: Annotated[
        bool,
        typer.Option(
            "--wait", help="Run the job in this process (or follow the worker running it) until it ends."
        ),
    ] = False,
) -> None:
    """Queue a re-training run on the feedback so far; a running `tanya worker` picks it up."""
    import threading

    from alignment.worker import Worker, retrain_runner, worker_name
    from storage.jobs import claim_next_job, enqueue_job
    from storage.models import JobStatus, TrainingJob

    service = _service()
    with service.database.session() as session:
        job, created = enqueue_job(session, requested_by=_cli_user(), reason="manual")
        job_id, status = job.id, job.status
    if created:
        out.console.print(f"Queued training job #{job_id}.")
    else:
        out.console.print(f"Training job #{job_id} is already {status}; not queuing another.")
    if not wait:
        return
    config, worker_config, paths = _training_setup(service)
    with service.database.session() as session:
        claimed = claim_next_job(session, worker=worker_name())
        if claimed is not None:
            session.expunge(claimed)
    if claimed is not None:
        runner = retrain_runner(service.database, config, paths(), show_progress=out.errors.is_terminal)
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
    import signal
    import threading

    from alignment.worker import Worker, retrain_runner

    service = _service()
    config, worker_config, paths = _training_setup(service)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    runner = retrain_runner(service.database, config, paths(), show_progress=out.errors.is_terminal)
    job_worker = Worker(
        service.database,
        runner,
        worker_config,
        adapters_dir=service.settings.adapters_dir,
        on_finished=_print_job,
    )
    if not once:
        schedule = (
            f"checks for new feedback every {worker_config.schedule_minutes:g} min"
            if worker_config.schedule_minutes
            else "scheduled runs off"
        )
        out.console.print(f"Worker {job_worker.name} waiting for training jobs ({schedule}).")
    ran = job_worker.serve(stop, once=once)
    out.console.print(f"Worker stopped after {ran} job(s).")


def _registry_call(call: Callable[..., Any], *args: Any) -> Any:
    from alignment.registry import AdapterIntegrityError, RegistryError

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
    from rich.table import Table

    from alignment.registry import list_versions

    service = _service()
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
            row["gate"] or "",
        )
    out.console.print(table)


@adapters_app.command("activate")
@friendly_errors
def adapters_activate(
    adapter_id: Annotated[int, typer.Argument(help="The id shown by `tanya adapters list`.")],
) -> None:
    """Make an adapter the active one (its files are verified first); running bots switch before their next answer."""
    from alignment.registry import activate_version

    service = _service()
    with service.database.session() as session:
        version = _registry_call(activate_version, session, adapter_id)
        name = version.name
    out.console.print(f"Adapter #{adapter_id} ({name}) is now active.")


@adapters_app.command("rollback")
@friendly_errors
def adapters_rollback() -> None:
    """Take the active adapter out of service and go back to the one before it (or to the base model)."""
    from alignment.registry import rollback

    service = _service()
    with service.database.session() as session:
        result = _registry_call(rollback, session)
    now = result.now_active or "the base model"
    out.console.print(f"Rolled back {result.rolled_back}; {now} answers from now on.")


def main() -> None:  # pragma: no cover - console-script entry point
    app()
