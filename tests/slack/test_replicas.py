"""Two real ``tanya serve`` processes on one PostgreSQL database: one event, delivered to both, one answer.

This is the production shape (replicas behind a load balancer, Slack retrying into the other one), so
the processes are real subprocesses started by the CLI, not two apps in the test's own process: only
the database can stop the second answer. They log JSON, which is checked on the way, and their
/metrics show which of them dropped the duplicate.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from storage import Database, Interaction
from tests.bot.observability.scrape import scrape
from tests.conftest import REPO_ROOT
from tests.slack import slack_requests as slack
from tests.slack.emulator import BOT_TOKEN, SIGNING_SECRET

pytestmark = [pytest.mark.model, pytest.mark.postgres]

TANYA = str(Path(sys.executable).with_name("tanya"))
STARTUP_SECONDS = 300


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Replica:
    def __init__(self, home: Path, database_url: str, api_url: str, log_dir: Path, name: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {key: value for key, value in os.environ.items() if not key.startswith(("SLACK_", "TANYA_"))}
        env.update(
            TANYA_HOME=str(home),
            TANYA_DATABASE_URL=database_url,
            TANYA_MAX_NEW_TOKENS="24",
            TANYA_LOG_FORMAT="json",
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=api_url,
        )
        self.stdout_path, self.stderr_path = log_dir / f"{name}.out", log_dir / f"{name}.err"
        with self.stdout_path.open("w") as stdout, self.stderr_path.open("w") as stderr:
            self.process = subprocess.Popen(
                [TANYA, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=REPO_ROOT,
                env=env,
                stdout=stdout,
                stderr=stderr,
                text=True,
            )

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"tanya serve exited {self.process.returncode}: {self.output()}")
        try:
            return slack.get(f"{self.url}/readyz", timeout=2).status == 200
        except OSError:
            return False

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=120)

    def output(self) -> str:
        return self.stdout_path.read_text() + self.stderr_path.read_text()

    def log_records(self) -> list[dict]:
        lines = [line for line in self.output().splitlines() if line.strip()]
        return [json.loads(line) for line in lines]  # fails on any line that is not one JSON object


def fire_together(urls: list[str], body: dict) -> list[int]:
    """POST the same signed body to every url at the same moment, one thread each."""
    start, statuses, data = threading.Barrier(len(urls)), [0] * len(urls), json.dumps(body)

    def send(index: int) -> None:
        start.wait()
        statuses[index] = slack.post(urls[index], data).status

    threads = [threading.Thread(target=send, args=(index,)) for index in range(len(urls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_two_processes_on_one_postgresql_database_answer_an_event_once(
    answering_service, postgres_url: str, emulator, tmp_path: Path
) -> None:
    database = Database.open(postgres_url)  # the schema first, as `tanya db upgrade` does in a deployment
    home = answering_service.settings.home  # the small knowledge base, already indexed
    replicas = [Replica(home, postgres_url, emulator.api_url, tmp_path, name) for name in ("first", "second")]
    try:
        for replica in replicas:
            slack.wait_until(
                replica.ready, timeout=STARTUP_SECONDS, interval=0.2, what=f"{replica.url}/readyz"
            )
        channel, ts, event_id = "CREPLICA01", slack.new_ts(), slack.unique("EvTWICE")
        mention = slack.app_mention("How do I connect to the VPN?", user="UASKER0010", channel=channel, ts=ts)
        body = slack.event_callback(mention, event_id=event_id)

        assert fire_together([f"{replica.url}/slack/events" for replica in replicas], body) == [200, 200]

        def answered() -> bool:
            return any(
                any(block.get("type") == "actions" for block in message.get("blocks", []))
                for message in emulator.thread(channel, ts)
            )

        def both_handled() -> bool:
            scrapes = [scrape(f"{replica.url}/metrics") for replica in replicas]
            dropped = sum(s.value("tanya_slack_duplicates_suppressed_total", kind="event") for s in scrapes)
            return dropped >= 1 and sum(s.value("tanya_slack_answers_in_flight") for s in scrapes) == 0

        slack.wait_until(answered, timeout=180, what="the answer in the thread")
        slack.wait_until(both_handled, timeout=60, what="the losing replica to drop its copy")

        scrapes = [scrape(f"{replica.url}/metrics") for replica in replicas]
        assert [s.value("tanya_slack_events_total", type="app_mention") for s in scrapes] == [1, 1]
        assert sorted(s.value("tanya_slack_duplicates_suppressed_total", kind="event") for s in scrapes) == [
            0,
            1,
        ]
        assert sum(s.value("tanya_answers_total") for s in scrapes) == 1

        placeholders = [
            call
            for call in emulator.calls_to("chat.postMessage")
            if call.args["channel"] == channel and call.args.get("thread_ts") == ts
        ]
        assert len(placeholders) == 1
        with database.session() as session:
            stored = session.scalar(
                select(func.count()).select_from(Interaction).where(Interaction.channel_id == channel)
            )
            [interaction_id] = session.scalars(
                select(Interaction.id).where(Interaction.channel_id == channel)
            )
        assert stored == 1
    finally:
        codes = [replica.stop() for replica in replicas]
        database.dispose()
    assert codes == [0, 0], [replica.output()[-2000:] for replica in replicas]

    records = [record for replica in replicas for record in replica.log_records()]
    assert any("listening on" in record["message"] for record in records), "start-up is logged as JSON too"
    answer_lines = [
        record
        for record in records
        if record.get("event_id") == event_id and record.get("interaction_id") == interaction_id
    ]
    assert answer_lines, "the answer's log line names its Slack event and its interaction"
