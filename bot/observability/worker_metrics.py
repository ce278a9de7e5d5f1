"""Prometheus metrics of ``tanya worker``: how training runs go, and what the registry serves.

``alignment.worker`` knows nothing of Prometheus (``alignment`` must not import ``bot``); the worker
command wraps the job runner it hands to ``Worker`` with ``instrument_runner`` instead, which times each
run, records its outcome and binds ``job_id`` to every log record the run emits. What is in the
database — jobs per status, the active adapter — is read when Prometheus scrapes, so it is right even
for jobs another worker ran. The metrics have their own registry, apart from the bot's, so a process
never exports the other's series.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from sqlalchemy import func, select

from bot.observability.logs import log_context
from storage import Database, JobStatus, TrainingJob
from storage.stats import active_adapter

if TYPE_CHECKING:
    from alignment.pipeline import RunOutcome
    from alignment.worker import JobRunner

log = logging.getLogger(__name__)

WORKER_REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=WORKER_REGISTRY)
PlatformCollector(registry=WORKER_REGISTRY)
GCCollector(registry=WORKER_REGISTRY)

# A run on a laptop CPU takes minutes to an hour; QLoRA on a GPU, minutes; "not enough feedback", seconds.
JOB_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800)
# alignment.pipeline's outcomes, plus "failed" for a run that raised.
OUTCOMES = ("promoted", "rejected", "not_enough_feedback", "failed")

JOB_SECONDS = Histogram(
    "tanya_worker_job_duration_seconds",
    "Wall time of training runs in this worker, by outcome: promoted, rejected, not_enough_feedback, failed.",
    ["outcome"],
    buckets=JOB_BUCKETS,
    registry=WORKER_REGISTRY,
)
JOBS = Counter(
    "tanya_worker_jobs",
    "Training jobs this worker finished, by final status (succeeded, failed).",
    ["status"],
    registry=WORKER_REGISTRY,
)
LAST_OUTCOME = Gauge(
    "tanya_worker_last_run_outcome",
    "1 for the outcome of this worker's latest run, 0 for the others. promoted = the gate passed the "
    "new adapter, rejected = the gate kept the old one.",
    ["outcome"],
    registry=WORKER_REGISTRY,
)
LAST_FINISHED = Gauge(
    "tanya_worker_last_run_finished_timestamp_seconds",
    "Unix time this worker's latest run ended (0 before the first).",
    registry=WORKER_REGISTRY,
)
RUNNING = Gauge("tanya_worker_job_running", "1 while this worker is running a job.", registry=WORKER_REGISTRY)

for _outcome in OUTCOMES:
    JOB_SECONDS.labels(outcome=_outcome)
    LAST_OUTCOME.labels(outcome=_outcome).set(0)
for _status in ("succeeded", "failed"):
    JOBS.labels(status=_status)


def record_run(outcome: str, seconds: float) -> None:
    """One finished run: its duration, the worker's final job status, and the latest-outcome gauge."""
    JOB_SECONDS.labels(outcome=outcome).observe(seconds)
    JOBS.labels(status="failed" if outcome == "failed" else "succeeded").inc()
    for known in {*OUTCOMES, outcome}:
        LAST_OUTCOME.labels(outcome=known).set(1 if known == outcome else 0)
    LAST_FINISHED.set(time.time())


def instrument_runner(runner: JobRunner) -> JobRunner:
    """``runner``, timed and counted, with the job id on every log record of the run."""

    def run(job: TrainingJob, hook: Callable[[dict[str, Any]], None]) -> RunOutcome:
        started = time.perf_counter()
        with log_context(job_id=job.id):
            RUNNING.set(1)
            try:
                outcome = runner(job, hook)
            except BaseException:
                record_run("failed", time.perf_counter() - started)
                raise
            finally:
                RUNNING.set(0)
            record_run(outcome.status, time.perf_counter() - started)
            log.info("training job %s ended: %s", job.id, outcome.status)
            return outcome

    return run


class DatabaseCollector:
    """Read at scrape time: jobs per status and the adapter the registry marks active."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("tanya_worker_database_up", "1 if the last scrape could read the database.")
        try:
            jobs, adapter = self._read()
        except Exception as exc:
            log.warning("metrics: cannot read the database: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        by_status = GaugeMetricFamily(
            "tanya_training_jobs", "Training jobs in the database, by status.", labels=["status"]
        )
        for status in JobStatus:
            by_status.add_metric([status.value], jobs.get(status.value, 0))
        yield by_status
        info = InfoMetricFamily(
            "tanya_worker_active_adapter", "The adapter the registry marks active ('base' for none)."
        )
        info.add_metric([], {"version": adapter or "base"})
        yield info

    def _read(self) -> tuple[dict[str, int], str | None]:
        with self.database.session() as session:
            rows = session.execute(select(TrainingJob.status, func.count()).group_by(TrainingJob.status))
            jobs = {_status_name(status): int(count) for status, count in rows}
            active = active_adapter(session)
            return jobs, active.name if active is not None else None


def _status_name(status: Any) -> str:
    return str(getattr(status, "value", status))


class _Exported:
    """The static metrics and the database's, as one collector for one metrics server."""

    def __init__(self, database: Database) -> None:
        self.database_collector = DatabaseCollector(database)

    def collect(self) -> Iterable[Metric]:
        yield from WORKER_REGISTRY.collect()
        yield from self.database_collector.collect()


def serve_worker_metrics(database: Database, host: str, port: int) -> WSGIServer:
    """Start ``/metrics`` on ``host:port`` in a daemon thread (port 0 picks a free one); returns the
    server, whose ``server_port`` says where it listens and whose ``shutdown`` stops it."""
    registry = CollectorRegistry()  # one per server: the database collector is bound to ``database``
    registry.register(_Exported(database))
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server
