"""``tanya serve`` killed (SIGKILL) in the middle of answering: the next process finishes the answers.

Two questions are being written (the stub generator holds them after one token) when the process is
killed. A second ``tanya serve`` on the same database starts, Slack retries both deliveries, and each
question ends with exactly one answer, written into the placeholder the dead process had posted. A
further retry after that changes nothing: a finished answer is never given twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.service import Tanya
from bot.settings import Settings
from bot.slack import render
from storage import Database, Interaction
from storage.models import ProcessedEvent
from tests.conftest import REPO_ROOT
from tests.slack import slack_requests as slack
from tests.slack.conftest import KNOWLEDGE
from tests.slack.emulator import BOT_TOKEN, SIGNING_SECRET
from tests.slack.stub_generator import REPLY, StubGenerator
from tests.slack.test_replicas import TANYA, _free_port

STARTUP_SECONDS = 300


def _serve(
    home: Path, database_url: str, api_url: str, generator_url: str, log: Path
) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SLACK_", "TANYA_"))}
    env.update(
        TANYA_HOME=str(home),
        TANYA_DATABASE_URL=database_url,
        TANYA_GENERATOR=generator_url,
        TANYA_GENERATOR_MODEL="stub-model",
        TANYA_CLAIM_LEASE_SECONDS="3",
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=api_url,
    )
    with log.open("w") as out:
        process = subprocess.Popen(
            [TANYA, "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"tanya serve exited {process.returncode}: {log.read_text()}")
        try:
            return slack.get(f"{url}/readyz", timeout=2).status == 200
        except OSError:
            return False

    slack.wait_until(ready, timeout=STARTUP_SECONDS, interval=0.2, what=f"{url}/readyz")
    return process, url


def _answered(emulator, channel: str, ts: str) -> list[dict] | None:
    thread = emulator.thread(channel, ts)
    return thread if thread and all(REPLY.split(" ")[-1] in message["text"] for message in thread) else None


@pytest.mark.parametrize("slack_retries", [True, False], ids=["slack-retries", "start-up-scan"])
def test_sigkill_mid_answer_then_restart_answers_each_question_once(
    emulator, database_url: str, tmp_path: Path, slack_retries: bool
) -> None:
    """With Slack's retries, or without any (the new process's scan for orphaned claims finds them)."""
    home = tmp_path / "home"
    (home / "docs").mkdir(parents=True)
    for name, text in KNOWLEDGE.items():
        (home / "docs" / name).write_text(text, encoding="utf-8")
    Tanya(Settings(home=home, database_url=database_url)).ingest([home / "docs"])
    database = Database.open(database_url)
    with StubGenerator() as generator:
        first, url = _serve(home, database_url, emulator.api_url, generator.url, tmp_path / "first.log")
        questions = []
        generator.hold()
        for number in range(2):
            channel, ts = f"CKILLED0{number}", slack.new_ts()
            mention = slack.app_mention(
                "How do I connect to the VPN?", user="UASKER0077", channel=channel, ts=ts
            )
            body = slack.event_callback(mention)
            assert slack.post(f"{url}/slack/events", json.dumps(body)).status == 200
            questions.append((channel, ts, body))
        slack.wait_until(lambda: generator.requests >= 2, timeout=60, what="both answers to be generating")
        placeholders = {}
        for channel, ts, _ in questions:
            thread = slack.wait_until(lambda c=channel, t=ts: emulator.thread(c, t), what="a placeholder")
            placeholders[channel] = thread[0]["ts"]
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        generator.release()

        second, url = _serve(home, database_url, emulator.api_url, generator.url, tmp_path / "second.log")
        try:
            for _, _, body in questions if slack_retries else ():  # Slack retries what went unanswered
                reply = slack.post(
                    f"{url}/slack/events", json.dumps(body), headers={"X-Slack-Retry-Num": "1"}
                )
                assert reply.status == 200
            threads = {
                channel: slack.wait_until(
                    lambda c=channel, t=ts: _answered(emulator, c, t),
                    timeout=120,
                    what=f"the answer in {channel}",
                )
                for channel, ts, _ in questions
            }

            def all_finished() -> bool:
                with database.session() as session:
                    open_claims = session.scalars(
                        select(ProcessedEvent.event_id).where(
                            ProcessedEvent.kind == "answer", ProcessedEvent.finished_at.is_(None)
                        )
                    ).all()
                return not open_claims

            slack.wait_until(all_finished, timeout=60, what="the answers' claims to be finished")
            for _, _, body in questions:  # once more, after the answers are finished
                assert (
                    slack.post(
                        f"{url}/slack/events", json.dumps(body), headers={"X-Slack-Retry-Num": "2"}
                    ).status
                    == 200
                )
            with database.session() as session:
                saved = {(row.channel_id, row.message_ts) for row in session.scalars(select(Interaction))}
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=120)
    database.dispose()
    final = {channel: emulator.thread(channel, ts) for channel, ts, _ in questions}
    lost = sum(1 for channel in placeholders if (channel, placeholders[channel]) not in saved)
    duplicates = sum(len(thread) - 1 for thread in final.values())
    how = "with Slack retries" if slack_retries else "start-up scan only"
    print(f"{database_url.split(':')[0]} ({how}): SIGKILL mid-answer: lost {lost}/2, duplicates {duplicates}")
    assert lost == 0 and duplicates == 0 and len(saved) == 2
    for channel, thread in threads.items():
        assert thread[0]["ts"] == placeholders[channel], "the dead process's placeholder was updated"
        assert render.PLACEHOLDER_TEXT not in final[channel][0]["text"]
    assert len(emulator.calls_to("chat.postMessage")) == 2, "no second placeholder was posted"
