"""``tanya worker``'s /metrics: run outcomes and durations, jobs per status, the registry's adapter.

The in-process tests drive the real ``Worker`` with a stand-in runner wrapped by ``instrument_runner``
(what the worker command does), then scrape the metrics server over HTTP. The last test starts the real
command with ``TANYA_WORKER_METRICS_PORT`` and JSON logs.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from alignment.pipeline import NOT_ENOUGH_FEEDBACK, PROMOTED, RunOutcome
from alignment.worker import Worker, WorkerConfig
from bot.observability.logs import current_context
from bot.observability.worker_metrics import instrument_runner, serve_worker_metrics
from storage import Database, TrainingJob
from storage.jobs import enqueue_job
from tests.bot.observability.scrape import Scrape, delta, scrape
from tests.conftest import REPO_ROOT
from tests.slack.slack_requests import wait_until

FAST = WorkerConfig(poll_seconds=0.01, heartbeat_seconds=0.05, schedule_minutes=0)
TANYA = str(Path(sys.executable).with_name("tanya"))


@pytest.fixture
def metrics_url(database: Database) -> Iterator[str]:
    server = serve_worker_metrics(database, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.server_port}/metrics"
    finally:
        server.shutdown()
        server.server_close()


def _queue(database: Database) -> int:
    with database.session() as session:
        return enqueue_job(session, requested_by="U1")[0].id


def _runner(status: str, seen: list[dict[str, Any]]) -> Callable[..., RunOutcome]:
    def run(job: TrainingJob, hook: Callable[[dict[str, Any]], None]) -> RunOutcome:
        seen.append(current_context())
        return RunOutcome(status, "done")

    return run


def test_a_promoted_run_and_a_failed_one_show_up_in_a_scrape(database: Database, metrics_url: str) -> None:
    before = scrape(metrics_url)
    assert before.value("tanya_worker_database_up") == 1
    assert before.value("tanya_training_jobs", status="queued") == 0

    first = _queue(database)
    assert scrape(metrics_url).value("tanya_training_jobs", status="queued") == 1
    seen: list[dict[str, Any]] = []
    finished = Worker(database, instrument_runner(_runner(PROMOTED, seen)), FAST).run_once()
    assert finished is not None and finished.id == first
    assert seen == [{"job_id": first}], "every log record of the run carries its job id"

    _queue(database)

    def explode(job: TrainingJob, hook: Callable[[dict[str, Any]], None]) -> RunOutcome:
        raise RuntimeError("CUDA out of memory")

    Worker(database, instrument_runner(explode), FAST).run_once()
    after = scrape(metrics_url)

    assert delta(before, after, "tanya_worker_job_duration_seconds_count", outcome="promoted") == 1
    assert delta(before, after, "tanya_worker_job_duration_seconds_count", outcome="failed") == 1
    assert delta(before, after, "tanya_worker_jobs_total", status="succeeded") == 1
    assert delta(before, after, "tanya_worker_jobs_total", status="failed") == 1
    assert after.value("tanya_worker_last_run_outcome", outcome="failed") == 1
    assert after.value("tanya_worker_last_run_outcome") == 1, "exactly one outcome is the latest"
    assert after.value("tanya_worker_last_run_finished_timestamp_seconds") >= time.time() - 60
    assert after.value("tanya_worker_job_running") == 0
    assert after.value("tanya_training_jobs", status="succeeded") == 1
    assert after.value("tanya_training_jobs", status="failed") == 1
    assert after.value("tanya_training_jobs", status="queued") == 0
    assert after.labels_of("tanya_worker_active_adapter_info") == [{"version": "base"}]


def test_the_gate_decision_of_the_latest_run_is_exported(database: Database, metrics_url: str) -> None:
    _queue(database)
    Worker(database, instrument_runner(_runner(NOT_ENOUGH_FEEDBACK, [])), FAST).run_once()
    latest = scrape(metrics_url)
    assert latest.value("tanya_worker_last_run_outcome", outcome=NOT_ENOUGH_FEEDBACK) == 1
    assert latest.value("tanya_worker_last_run_outcome", outcome=PROMOTED) == 0
    _queue(database)
    Worker(database, instrument_runner(_runner(PROMOTED, [])), FAST).run_once()
    latest = scrape(metrics_url)
    assert latest.value("tanya_worker_last_run_outcome", outcome=PROMOTED) == 1
    assert latest.value("tanya_worker_last_run_outcome", outcome=NOT_ENOUGH_FEEDBACK) == 0


def test_an_unreachable_database_reads_as_down_not_as_a_broken_scrape(tmp_path: Path) -> None:
    database = Database("postgresql+psycopg://tanya@127.0.0.1:9/down?connect_timeout=2")
    server = serve_worker_metrics(database, "127.0.0.1", 0)
    try:
        down: Scrape = scrape(f"http://127.0.0.1:{server.server_port}/metrics")
    finally:
        server.shutdown()
        server.server_close()
        database.dispose()
    assert down.value("tanya_worker_database_up") == 0
    assert "tanya_worker_jobs" in down.types


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_worker_command_serves_metrics_and_logs_json(tmp_path: Path) -> None:
    home, base = tmp_path / "home", tmp_path / "base-model"
    home.mkdir()
    base.mkdir()  # a local model folder: the worker needs no converted checkpoint to start
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SLACK_", "TANYA_"))}
    env.update(
        TANYA_HOME=str(home),
        TANYA_GENERATOR=str(base),
        TANYA_WORKER_METRICS_PORT=str(port),
        TANYA_METRICS_HOST="127.0.0.1",
        TANYA_TRAIN_SCHEDULE_MINUTES="0",
        TANYA_LOG_FORMAT="json",
    )
    process = subprocess.Popen(
        [TANYA, "worker"], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    url = f"http://127.0.0.1:{port}/metrics"

    def scraped() -> Scrape | None:
        assert process.poll() is None, process.communicate()
        try:
            return scrape(url, timeout=2)
        except (urllib.error.URLError, ConnectionError):
            return None

    try:
        metrics = wait_until(scraped, timeout=180, interval=0.2, what="the worker's metrics server")
        assert metrics.value("tanya_worker_database_up") == 1
        assert metrics.value("tanya_training_jobs", status="queued") == 0
        assert "tanya_worker_job_duration_seconds" in metrics.types
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    lines = [line for line in (stdout + stderr).splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    messages = [record["message"] for record in records]
    assert any(message.startswith("Worker metrics on http://127.0.0.1:") for message in messages), messages
    assert messages[-1] == "Worker stopped after 0 job(s)."
