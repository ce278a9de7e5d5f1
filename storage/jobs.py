"""The training-job queue: enqueue from the CLI or Slack, claim from exactly one worker."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from storage.models import JobStatus, TrainingJob, utcnow

OPEN_STATUSES = (JobStatus.queued, JobStatus.running)


def enqueue_job(
    session: Session,
    *,
    requested_by: str,
    reason: str = "manual",
    notify_channel: str | None = None,
    config: dict[str, Any] | None = None,
) -> tuple[TrainingJob, bool]:
    """Queue a training run unless one is already queued or running.

    Returns (job, created). Asking twice while a run is pending gives the pending job back: two
    admins pressing "retrain" should not train twice on the same feedback.
    """
    pending = session.scalars(
        select(TrainingJob).where(TrainingJob.status.in_(OPEN_STATUSES)).order_by(TrainingJob.id)
    ).first()
    if pending is not None:
        return pending, False
    job = TrainingJob(
        requested_by=requested_by, reason=reason, notify_channel=notify_channel, config=config or {}
    )
    session.add(job)
    session.flush()
    return job, True


def claim_next_job(session: Session, *, worker: str) -> TrainingJob | None:
    """Mark the oldest queued job running for this worker; two workers never get the same job.

    PostgreSQL uses ``FOR UPDATE SKIP LOCKED``; SQLite serialises writers, and the conditional
    UPDATE below only succeeds for the first of them.
    """
    query = select(TrainingJob).where(TrainingJob.status == JobStatus.queued).order_by(TrainingJob.id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    job = session.scalars(query.limit(1)).first()
    if job is None:
        return None
    now = utcnow()
    claimed = session.execute(
        update(TrainingJob)
        .where(TrainingJob.id == job.id, TrainingJob.status == JobStatus.queued)
        .values(status=JobStatus.running, worker=worker, started_at=now, heartbeat_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not claimed:
        return None
    session.refresh(job)
    return job


def heartbeat(session: Session, job_id: int) -> None:
    session.execute(update(TrainingJob).where(TrainingJob.id == job_id).values(heartbeat_at=utcnow()))


def finish_job(
    session: Session,
    job_id: int,
    *,
    status: JobStatus,
    metrics: dict[str, Any] | None = None,
    error: str | None = None,
    adapter_id: int | None = None,
) -> TrainingJob:
    job = session.get(TrainingJob, job_id)
    if job is None:
        raise LookupError(f"there is no training job {job_id}")
    job.status = status
    job.finished_at = utcnow()
    if metrics is not None:
        job.metrics = metrics
    if error is not None:
        job.error = error
    if adapter_id is not None:
        job.adapter_id = adapter_id
    session.flush()
    return job


def fail_abandoned_jobs(session: Session, *, stale_after: timedelta, now: datetime | None = None) -> int:
    """Running jobs whose worker stopped sending heartbeats are marked failed, never left hanging."""
    cutoff = (now or utcnow()) - stale_after
    return int(
        session.execute(
            update(TrainingJob)
            .where(TrainingJob.status == JobStatus.running, TrainingJob.heartbeat_at < cutoff)
            .values(status=JobStatus.failed, finished_at=utcnow(), error="worker stopped before finishing")
        ).rowcount
    )


def recent_jobs(session: Session, limit: int = 10) -> list[TrainingJob]:
    return list(session.scalars(select(TrainingJob).order_by(TrainingJob.id.desc()).limit(limit)))
