"""The training worker: claims queued jobs, runs them with heartbeats, and starts runs on a schedule.

Safety properties, each with a test:

* two workers never run the same job (``storage.jobs.claim_next_job``: ``FOR UPDATE SKIP LOCKED`` on
  PostgreSQL, a conditional UPDATE on SQLite);
* a worker killed mid-run (SIGKILL, OOM, a reboot) leaves the active adapter untouched, because
  activation is the run's last transaction, and its job is marked failed by the next worker to start:
  at once if the dead worker ran on this host (its pid is gone), otherwise once its heartbeat is older
  than ``stale_after_seconds``;
* the scheduler only enqueues when enough new votes and corrections arrived since the last run, and
  ``enqueue_job`` never queues a second job while one is open.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from alignment.config import AlignmentConfig
from alignment.pipeline import RunOutcome, RunPaths, retrain
from alignment.registry import clean_stale_staging, pid_alive
from storage import Database
from storage.jobs import claim_next_job, enqueue_job, fail_abandoned_jobs, finish_job, heartbeat
from storage.models import Correction, JobStatus, TrainingJob, Vote, utcnow

log = logging.getLogger(__name__)

_SCHEDULE_LOCK = 724271003
JobRunner = Callable[[TrainingJob, Callable[[dict[str, Any]], None]], RunOutcome]


@dataclass(frozen=True)
class WorkerConfig:
    """How often the worker looks for work and reports that it is alive."""

    poll_seconds: float = field(default=5.0, metadata={"help": "Pause between looks at the job queue."})
    heartbeat_seconds: float = field(
        default=20.0, metadata={"help": "How often a running job's heartbeat is written."}
    )
    stale_after_seconds: float = field(
        default=600.0,
        metadata={"help": "A running job whose heartbeat is older than this is failed by the next worker."},
    )
    schedule_minutes: float = field(
        default=60.0,
        metadata={"help": "How often to check for enough new feedback to start a run; 0 turns it off."},
    )
    min_new_feedback: int = field(
        default=20,
        metadata={"help": "New votes + corrections since the last run that start a scheduled run."},
    )


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _dead_local_worker(name: str | None, host: str) -> bool:
    if not name or ":" not in name:
        return False
    worker_host, _, pid = name.rpartition(":")
    return worker_host == host and pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid))


def recover_abandoned_jobs(database: Database, config: WorkerConfig) -> int:
    """Fail running jobs whose worker is gone; returns how many."""
    host = socket.gethostname()
    with database.session() as session:
        dead = [
            job.id
            for job in session.scalars(select(TrainingJob).where(TrainingJob.status == JobStatus.running))
            if _dead_local_worker(job.worker, host)
        ]
        for job_id in dead:
            finish_job(
                session,
                job_id,
                status=JobStatus.failed,
                error="worker stopped before finishing (process gone)",
            )
        stale = fail_abandoned_jobs(session, stale_after=timedelta(seconds=config.stale_after_seconds))
    if dead or stale:
        log.warning("marked %d abandoned training job(s) failed", len(dead) + stale)
    return len(dead) + stale


def new_feedback_since(session: Session, since: datetime | None) -> int:
    """Votes cast or changed, plus corrections written, after ``since`` (all of them for None)."""
    votes = select(func.count()).select_from(Vote)
    corrections = select(func.count()).select_from(Correction)
    if since is not None:
        votes = votes.where(Vote.updated_at > since)
        corrections = corrections.where(Correction.created_at > since)
    return int(session.scalar(votes) or 0) + int(session.scalar(corrections) or 0)


def maybe_schedule(database: Database, config: WorkerConfig) -> TrainingJob | None:
    """Queue a run when enough feedback arrived since the last job was created; None otherwise."""
    with database.session() as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEDULE_LOCK})
        last = session.scalar(select(func.max(TrainingJob.created_at)))
        count = new_feedback_since(session, last)
        if count < config.min_new_feedback:
            return None
        job, created = enqueue_job(
            session, requested_by="schedule", reason="schedule", config={"new_feedback": count}
        )
        return job if created else None


class _Progress:
    """The run's latest stage and step: stage changes are written at once, steps with the heartbeat."""

    def __init__(self, database: Database, job_id: int) -> None:
        self.database = database
        self.job_id = job_id
        self._state: dict[str, Any] = {}
        self._lock = threading.Lock()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._state)

    def update(self, record: dict[str, Any]) -> None:
        keep = {key: record[key] for key in ("stage", "step", "max_steps", "event") if key in record}
        with self._lock:
            changed = keep.get("stage") != self._state.get("stage") or "event" in keep
            self._state.update(keep)
        if changed:
            self.flush(beat=True)

    def flush(self, *, beat: bool) -> None:
        try:
            with self.database.session() as session:
                if beat:
                    heartbeat(session, self.job_id)
                job = session.get(TrainingJob, self.job_id)
                if job is not None and job.status == JobStatus.running:
                    job.metrics = {"progress": self.snapshot()}
        except Exception as exc:  # a database hiccup must not kill the run
            log.warning("progress update for job %s failed: %s", self.job_id, exc)


class Worker:
    """Runs queued training jobs one at a time; ``run_once`` is the unit the CLI and tests drive."""

    def __init__(
        self,
        database: Database,
        runner: JobRunner,
        config: WorkerConfig | None = None,
        *,
        adapters_dir: Path | None = None,
        on_finished: Callable[[TrainingJob], None] | None = None,
    ) -> None:
        self.database = database
        self.runner = runner
        self.config = config or WorkerConfig()
        self.adapters_dir = adapters_dir
        self.on_finished = on_finished
        self.name = worker_name()
        self._last_schedule_check: datetime | None = None

    def run_once(self) -> TrainingJob | None:
        """Claim the oldest queued job and run it to a final status; None when the queue was empty."""
        with self.database.session() as session:
            job = claim_next_job(session, worker=self.name)
            if job is None:
                return None
            session.expunge(job)
        return self.run_claimed(job)

    def run_claimed(self, job: TrainingJob) -> TrainingJob:
        """Run a job this process has claimed, heartbeating until it ends."""
        progress = _Progress(self.database, job.id)
        stop = threading.Event()
        beater = threading.Thread(target=self._heartbeat, args=(progress, stop), daemon=True)
        beater.start()
        try:
            outcome = self.runner(job, progress.update)
        except BaseException as exc:
            stop.set()
            beater.join()
            log.error("training job %s failed: %s", job.id, exc)
            with self.database.session() as session:
                finished = finish_job(
                    session,
                    job.id,
                    status=JobStatus.failed,
                    metrics={"progress": progress.snapshot()},
                    error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}",
                )
            if not isinstance(exc, Exception):
                raise  # Ctrl-C and SystemExit still stop the process, after the job is marked failed
            return finished
        stop.set()
        beater.join()
        with self.database.session() as session:
            row = session.get(TrainingJob, job.id)
            if row is not None:
                row.lineage = outcome.lineage
            return finish_job(
                session,
                job.id,
                status=JobStatus.succeeded,
                metrics={"outcome": outcome.status, "message": outcome.message, **outcome.metrics},
                adapter_id=outcome.adapter_id,
            )

    def _heartbeat(self, progress: _Progress, stop: threading.Event) -> None:
        while not stop.wait(self.config.heartbeat_seconds):
            progress.flush(beat=True)

    def schedule_due(self, now: datetime) -> bool:
        if self.config.schedule_minutes <= 0:
            return False
        if self._last_schedule_check and now - self._last_schedule_check < timedelta(
            minutes=self.config.schedule_minutes
        ):
            return False
        self._last_schedule_check = now
        return True

    def serve(self, stop: threading.Event, *, once: bool = False) -> int:
        """Loop until ``stop`` is set (or the queue is empty with ``once``); returns jobs run."""
        recover_abandoned_jobs(self.database, self.config)
        if self.adapters_dir is not None and self.adapters_dir.is_dir():
            clean_stale_staging(self.adapters_dir)  # half-written adapters of a killed run
        ran = 0
        while not stop.is_set():
            if self.schedule_due(utcnow()):
                scheduled = maybe_schedule(self.database, self.config)
                if scheduled is not None:
                    log.info("scheduled training job %s: enough new feedback", scheduled.id)
            job = self.run_once()
            if job is not None:
                ran += 1
                if self.on_finished is not None:
                    self.on_finished(job)
                continue
            if once:
                break
            recover_abandoned_jobs(self.database, self.config)
            stop.wait(self.config.poll_seconds)
        return ran


def retrain_runner(
    database: Database,
    config: AlignmentConfig,
    paths: RunPaths | Callable[[], RunPaths],
    *,
    show_progress: bool = False,
) -> JobRunner:
    """The runner a worker uses: ``retrain`` with the job's ``config["training"]`` overrides applied.

    :param paths: the run's paths, or a function that finds them for each job: a check in it (that a
        server still serves the base model, say) then stops a job before anything is trained.
    """

    def run(job: TrainingJob, hook: Callable[[dict[str, Any]], None]) -> RunOutcome:
        overrides = dict((job.config or {}).get("training") or {})
        return retrain(
            database,
            config.with_overrides(overrides),
            paths() if callable(paths) else paths,
            job_id=job.id,
            hook=hook,
            show_progress=show_progress,
        )

    return run
