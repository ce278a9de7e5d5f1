"""The job worker with a stand-in runner: claiming, racing, failures, abandoned jobs, the schedule."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from alignment.pipeline import PROMOTED, RunOutcome
from alignment.worker import Worker, WorkerConfig, maybe_schedule, recover_abandoned_jobs
from storage import Database, JobStatus, TrainingJob
from storage.jobs import claim_next_job, enqueue_job
from storage.models import utcnow
from tests.alignment.seed import ask, wait_for

FAST = WorkerConfig(poll_seconds=0.01, heartbeat_seconds=0.05, schedule_minutes=0)


def _job(database: Database, job_id: int) -> TrainingJob:
    with database.session() as session:
        job = session.get(TrainingJob, job_id)
        assert job is not None
        return job


def _recording_runner(calls: list[int], gate: threading.Event | None = None) -> Callable[..., RunOutcome]:
    def run(job: TrainingJob, hook: Callable[[dict[str, Any]], None]) -> RunOutcome:
        calls.append(job.id)
        hook({"stage": "sft", "event": "begin"})
        if gate is not None:
            assert gate.wait(30), "the test never released the runner"
        return RunOutcome(PROMOTED, "Adapter x is now active.", lineage={"train": {"votes": [1, 2]}})

    return run


def test_a_job_runs_to_success_with_heartbeats_progress_and_lineage(database: Database) -> None:
    with database.session() as session:
        job_id = enqueue_job(session, requested_by="U1")[0].id
    release = threading.Event()
    calls: list[int] = []
    worker = Worker(database, _recording_runner(calls, release), FAST)
    thread = threading.Thread(target=worker.run_once)
    thread.start()
    try:
        # While it runs: the row says running, names this worker, and shows the stage the runner reported.
        def running_with_progress() -> TrainingJob | None:
            job = _job(database, job_id)
            progress = (job.metrics or {}).get("progress", {})
            return job if job.status == JobStatus.running and progress.get("stage") == "sft" else None

        job = wait_for(running_with_progress, timeout=30, what="the running job to show its progress")
        assert job.worker == worker.name and job.heartbeat_at is not None
    finally:
        release.set()
        thread.join()
    job = _job(database, job_id)
    assert calls == [job_id]
    assert job.status == JobStatus.succeeded and job.finished_at is not None
    assert job.metrics["outcome"] == PROMOTED and job.lineage == {"train": {"votes": [1, 2]}}


def test_a_failing_run_marks_the_job_failed_with_the_error(database: Database) -> None:
    with database.session() as session:
        job_id = enqueue_job(session, requested_by="U1")[0].id

    def explode(job: TrainingJob, hook: Callable[[dict[str, Any]], None]) -> RunOutcome:
        raise RuntimeError("out of memory")

    finished = Worker(database, explode, FAST).run_once()
    assert finished is not None and finished.id == job_id
    job = _job(database, job_id)
    assert job.status == JobStatus.failed and job.error and "RuntimeError: out of memory" in job.error


def _race_once(databases: list[Database]) -> tuple[int, list[int], list[TrainingJob | None]]:
    """Two workers, each with its own connection pool, claim at the same moment; one queued job."""
    with databases[0].session() as session:
        job_id = enqueue_job(session, requested_by="U1")[0].id
    calls: list[int] = []
    workers = [Worker(db, _recording_runner(calls), FAST) for db in databases]
    for number, worker in enumerate(workers):
        worker.name = f"racer-{number}"
    start = threading.Barrier(len(workers))
    results: list[TrainingJob | None] = [None] * len(workers)

    def race(index: int) -> None:
        start.wait()
        results[index] = workers[index].run_once()

    threads = [threading.Thread(target=race, args=(index,)) for index in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return job_id, calls, results


@pytest.mark.postgres
def test_two_workers_racing_for_one_job_run_it_once(postgres_url: str) -> None:
    databases = [Database.open(postgres_url) for _ in range(2)]
    try:
        for _ in range(5):
            job_id, calls, results = _race_once(databases)
            assert calls == [job_id], "the job ran more than once (or not at all)"
            assert sum(result is not None for result in results) == 1
            assert _job(databases[0], job_id).status == JobStatus.succeeded
    finally:
        for db in databases:
            db.dispose()


def test_a_job_of_a_dead_local_worker_is_failed_at_once(database: Database) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    from alignment.worker import worker_name

    host = worker_name().rpartition(":")[0]
    with database.session() as session:
        enqueue_job(session, requested_by="U1")
        job = claim_next_job(session, worker=f"{host}:{int(dead.stdout)}")
        assert job is not None
        job_id = job.id
    assert recover_abandoned_jobs(database, FAST) == 1
    job = _job(database, job_id)
    assert job.status == JobStatus.failed and "worker stopped" in (job.error or "")


def test_a_job_of_a_remote_worker_is_failed_only_when_its_heartbeat_is_stale(database: Database) -> None:
    with database.session() as session:
        enqueue_job(session, requested_by="U1")
        job = claim_next_job(session, worker="other-host:123")
        assert job is not None
        job_id = job.id
    assert recover_abandoned_jobs(database, WorkerConfig(stale_after_seconds=600)) == 0
    assert _job(database, job_id).status == JobStatus.running
    with database.session() as session:
        session.get(TrainingJob, job_id).heartbeat_at = utcnow() - timedelta(minutes=11)  # type: ignore[union-attr]
    assert recover_abandoned_jobs(database, WorkerConfig(stale_after_seconds=600)) == 1
    assert _job(database, job_id).status == JobStatus.failed


def test_the_schedule_enqueues_once_enough_new_feedback_arrived(database: Database) -> None:
    config = WorkerConfig(min_new_feedback=3, schedule_minutes=1)
    ask(database, "Q1?", "A1.", up=1)
    assert maybe_schedule(database, config) is None  # 1 vote < 3
    ask(database, "Q2?", "A2.", up=1, correction="Better A2.")
    job = maybe_schedule(database, config)
    assert job is not None and job.reason == "schedule" and job.config["new_feedback"] == 3
    assert maybe_schedule(database, config) is None  # one open job at a time
    with database.session() as session:
        session.get(TrainingJob, job.id).status = JobStatus.succeeded  # type: ignore[union-attr]
    assert maybe_schedule(database, config) is None  # nothing new since that job was created
    ask(database, "Q3?", "A3.", up=2, down=1)
    assert maybe_schedule(database, config) is not None


def test_serve_once_runs_the_queue_and_respects_the_schedule_switch(database: Database) -> None:
    calls: list[int] = []
    for number in range(5):
        ask(database, f"Q{number}?", "A.", up=1)
    worker = Worker(database, _recording_runner(calls), FAST)  # schedule_minutes=0: never enqueues itself
    assert worker.serve(threading.Event(), once=True) == 0 and calls == []
    scheduled = Worker(
        database, _recording_runner(calls), WorkerConfig(schedule_minutes=5, min_new_feedback=5)
    )
    assert scheduled.serve(threading.Event(), once=True) == 1 and len(calls) == 1
