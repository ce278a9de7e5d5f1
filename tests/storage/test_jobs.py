from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from storage import Database, JobStatus
from storage.jobs import claim_next_job, enqueue_job, fail_abandoned_jobs, finish_job
from storage.models import utcnow


def test_enqueue_returns_the_pending_job_instead_of_a_second_one(database: Database) -> None:
    with database.session() as session:
        job, created = enqueue_job(session, requested_by="U1", reason="slack")
        assert created
        first_id = job.id
    with database.session() as session:
        again, created = enqueue_job(session, requested_by="U2")
        assert not created and again.id == first_id


def test_two_workers_never_claim_the_same_job(database_url: str) -> None:
    workers = [Database.open(database_url) for _ in range(2)]
    with workers[0].session() as session:
        enqueue_job(session, requested_by="U1")

    def claim(i: int) -> int | None:
        with workers[i % 2].session() as session:
            job = claim_next_job(session, worker=f"w{i}")
            return job.id if job else None

    with ThreadPoolExecutor(max_workers=6) as pool:
        claimed = [job_id for job_id in pool.map(claim, range(12)) if job_id is not None]
    assert len(claimed) == 1
    for db in workers:
        db.dispose()


def test_finish_and_abandon(database: Database) -> None:
    with database.session() as session:
        enqueue_job(session, requested_by="U1")
        job = claim_next_job(session, worker="w1")
        assert job is not None and job.status == JobStatus.running
        job_id = job.id
    with database.session() as session:
        assert fail_abandoned_jobs(session, stale_after=timedelta(minutes=5)) == 0
        assert (
            fail_abandoned_jobs(session, stale_after=timedelta(minutes=5), now=utcnow() + timedelta(hours=1))
            == 1
        )
    with database.session() as session:
        job = finish_job(session, job_id, status=JobStatus.failed, error="boom")
        assert job.error == "boom"
