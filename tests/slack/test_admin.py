"""``/tanya`` for admins and everyone else, training-job notices, adapter rollback and the App Home."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from alignment.registry import CONFIG_FILE, WEIGHTS_FILE, sha256_file
from storage import AdapterStatus, AdapterVersion, ChannelKind, JobStatus, TrainingJob
from storage.feedback import set_vote
from storage.interactions import NewInteraction, record_interaction
from storage.models import utcnow
from tests.slack import slack_requests as slack
from tests.slack.conftest import ADMIN

CHANNEL = "CADMIN0001"
NOBODY = "UNOBODY001"


def answer_of(bot, name: str, timeout: float = 30.0) -> str:
    found = slack.wait_until(lambda: bot.emulator.responses(name), timeout=timeout, what=f"a reply to {name}")
    assert len(found) == 1
    assert found[0].args.get("response_type") == "ephemeral"
    return found[0].args["text"]


def jobs(bot) -> list[TrainingJob]:
    with bot.database.session() as session:
        return list(session.scalars(select(TrainingJob).order_by(TrainingJob.id)))


def test_only_admins_can_retrain(make_bot) -> None:
    bot = make_bot()
    refused = answer_of(bot, bot.command("retrain", user=NOBODY, channel=CHANNEL))
    assert "Only tanya admins" in refused and f"<@{ADMIN}>" in refused
    assert jobs(bot) == [], "a refusal queues nothing"

    queued = answer_of(bot, bot.command("retrain", user=ADMIN, channel=CHANNEL))
    [job] = jobs(bot)
    assert f"#{job.id}" in queued
    assert (job.status, job.requested_by, job.reason, job.notify_channel) == (
        JobStatus.queued,
        ADMIN,
        "slack",
        CHANNEL,
    )
    again = answer_of(bot, bot.command("retrain", user=ADMIN, channel="COTHER0003"))
    assert "already queued" in again and len(jobs(bot)) == 1


def test_workspace_admins_count_only_when_enabled(make_bot, emulator) -> None:
    emulator.users["UWSADMIN01"] = {"is_admin": True}
    off = make_bot()
    assert "Only tanya admins" in answer_of(off, off.command("retrain", user="UWSADMIN01"))
    assert emulator.calls_to("users.info") == []
    assert jobs(off) == []

    on = make_bot(slack_workspace_admins=True)
    assert "Queued training job" in answer_of(on, on.command("retrain", user="UWSADMIN01"))
    assert "Only tanya admins" in answer_of(on, on.command("retrain", user=NOBODY))
    assert [call.args["user"] for call in emulator.calls_to("users.info")] == ["UWSADMIN01", NOBODY]


def test_help_and_unknown_subcommands_are_answered_in_the_acknowledgement(make_bot) -> None:
    bot = make_bot()
    for text in ("", "help", "dance"):
        bot.command(text, user=NOBODY)
        body = bot.last_command_reply.json()
        assert "/tanya retrain" in body["text"], text
    assert "don't know `/tanya dance`" in bot.last_command_reply.json()["text"]
    bot.settle()
    assert bot.emulator.responses() == []


def test_status_stats_and_adapters(make_bot) -> None:
    bot = make_bot()
    with bot.database.session() as session:
        interaction = record_interaction(
            session,
            NewInteraction(question="q", answer="a", prompt="p", generator="test", channel_id=CHANNEL),
        )
        set_vote(session, interaction_id=interaction.id, user_id="U1", value=1, source="reaction")
    stats = answer_of(bot, bot.command("stats", user=NOBODY))
    assert "1 answers" in stats and "100% helpful" in stats and "1↑ 0↓" in stats
    status = answer_of(bot, bot.command("status", user=NOBODY))
    assert "*interactions*: 1" in status and "*votes up*: 1" in status
    assert "sqlite" not in status.lower(), "where the data lives is for admins only"
    assert "database" in answer_of(bot, bot.command("status", user=ADMIN))
    assert "No adapters" in answer_of(bot, bot.command("adapters", user=NOBODY))


def _adapters(bot) -> dict[str, AdapterStatus]:
    with bot.database.session() as session:
        return {row.name: row.status for row in session.scalars(select(AdapterVersion))}


def _adapter_files(folder: Path, seed: str) -> tuple[str, str]:
    """A complete adapter folder as the registry expects it: (path, sha256 of the weights)."""
    folder.mkdir(parents=True)
    (folder / WEIGHTS_FILE).write_bytes(seed.encode() * 64)
    (folder / CONFIG_FILE).write_text('{"r": 8}', encoding="utf-8")
    return str(folder), sha256_file(folder / WEIGHTS_FILE)


def test_rollback_restores_the_previous_adapter_in_one_step(make_bot, tmp_path: Path) -> None:
    bot = make_bot()
    assert "Nothing to roll back" in answer_of(bot, bot.command("rollback", user=ADMIN))
    now = utcnow()
    v1_path, v1_sha = _adapter_files(tmp_path / "adapters" / "tanya-v1", "one")
    v2_path, v2_sha = _adapter_files(tmp_path / "adapters" / "tanya-v2", "two")
    with bot.database.session() as session:
        first = AdapterVersion(
            name="tanya-v1",
            base_model="smollm2",
            path=v1_path,
            sha256=v1_sha,
            status=AdapterStatus.retired,
            activated_at=now - timedelta(days=2),
        )
        session.add(first)
        session.flush()
        session.add(
            AdapterVersion(
                name="tanya-v2",
                base_model="smollm2",
                path=v2_path,
                sha256=v2_sha,
                parent_id=first.id,
                status=AdapterStatus.active,
                activated_at=now - timedelta(days=1),
            )
        )
        session.add(
            AdapterVersion(
                name="tanya-v3", base_model="smollm2", path="/nowhere", status=AdapterStatus.rejected
            )
        )

    listing = answer_of(bot, bot.command("adapters", user=NOBODY))
    assert "▶ `tanya-v2` — active" in listing and "`tanya-v3` — rejected" in listing

    assert "Only tanya admins" in answer_of(bot, bot.command("rollback", user=NOBODY))
    assert _adapters(bot)["tanya-v2"] is AdapterStatus.active

    done = answer_of(bot, bot.command("rollback", user=ADMIN))
    assert "`tanya-v1` is active again" in done
    statuses = _adapters(bot)
    assert statuses["tanya-v1"] is AdapterStatus.active
    assert statuses["tanya-v2"] is not AdapterStatus.active
    assert [name for name, status in statuses.items() if status is AdapterStatus.active] == ["tanya-v1"]

    last = answer_of(bot, bot.command("rollback", user=ADMIN))
    assert "base model answers again" in last
    assert AdapterStatus.active not in _adapters(bot).values()


def test_job_status_changes_are_posted_once_to_the_channel_that_asked(make_bot, sqlite_url) -> None:
    first = make_bot(database_url=sqlite_url, job_poll_seconds=0.05)
    second = make_bot(database_url=sqlite_url, job_poll_seconds=0.05)  # a replica watching the same queue
    answer_of(first, first.command("retrain", user=ADMIN, channel=CHANNEL))
    [job] = jobs(first)

    def posts() -> list[str]:
        return [
            c.args["text"]
            for c in first.emulator.calls_to("chat.postMessage")
            if c.args["channel"] == CHANNEL
        ]

    with first.database.session() as session:
        row = session.get(TrainingJob, job.id)
        row.status, row.worker, row.started_at = JobStatus.running, "gpu-1", utcnow()
    slack.wait_until(lambda: len(posts()) == 1, timeout=30, what="the 'running' notice")
    assert f"#{job.id}" in posts()[0] and "gpu-1" in posts()[0]

    with first.database.session() as session:
        row = session.get(TrainingJob, job.id)
        row.status, row.finished_at, row.error = JobStatus.failed, utcnow(), "out of memory\nTraceback …"
    slack.wait_until(lambda: len(posts()) == 2, timeout=30, what="the 'failed' notice")
    assert "failed: out of memory" in posts()[1] and "Traceback" not in posts()[1]

    # Both pollers keep polling; neither repeats a notice.
    for bot in (first, second):
        assert bot.runtime.poller.poll_once() == 0
    assert len(posts()) == 2


def test_a_finished_run_posts_its_report_in_the_notice_thread(make_bot, tmp_path: Path) -> None:
    bot = make_bot(job_poll_seconds=0.05)
    folder = tmp_path / "adapters" / "tanya-job-1"
    path, sha = _adapter_files(folder, "trained")
    (folder / "report.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"plot" * 100)
    (folder / "summary.md").write_text("# Run tanya-job-1\n\n**passed the gate**\n", encoding="utf-8")
    answer_of(bot, bot.command("retrain", user=ADMIN, channel=CHANNEL))
    [job] = jobs(bot)
    with bot.database.session() as session:
        adapter = AdapterVersion(
            name="tanya-job-1",
            base_model="smollm2",
            path=path,
            sha256=sha,
            status=AdapterStatus.active,
            activated_at=utcnow(),
        )
        session.add(adapter)
        session.flush()
        row = session.get(TrainingJob, job.id)
        row.status, row.started_at, row.finished_at = JobStatus.succeeded, utcnow(), utcnow()
        row.adapter_id = adapter.id
        row.metrics = {
            "outcome": "promoted",
            "message": "Adapter tanya-job-1 is now active: better on held-out.",
        }

    [completed] = slack.wait_until(
        lambda: bot.emulator.calls_to("files.completeUploadExternal"), timeout=30, what="the report upload"
    )
    [notice] = [m for (channel, _), m in bot.emulator.messages.items() if channel == CHANNEL]
    assert "finished: Adapter tanya-job-1 is now active" in notice["text"]
    assert completed.args["channel_id"] == CHANNEL and completed.args["thread_ts"] == notice["ts"]
    assert "passed the gate" in completed.args["initial_comment"]
    assert list(bot.emulator.uploads.values()) == [(folder / "report.png").read_bytes()]


def test_app_home_shows_feedback_jobs_and_adapter(make_bot) -> None:
    bot = make_bot()
    with bot.database.session() as session:
        public = record_interaction(
            session,
            NewInteraction(
                question="Why is the build server slow?",
                answer="a",
                prompt="p",
                generator="t",
                origin=ChannelKind.public_channel,
            ),
        )
        private = record_interaction(
            session,
            NewInteraction(
                question="Salary bands for my team?",
                answer="a",
                prompt="p",
                generator="t",
                origin=ChannelKind.direct_message,
            ),
        )
        for interaction in (public, private):
            set_vote(session, interaction_id=interaction.id, user_id="U1", value=-1, source="reaction")
        session.add(
            AdapterVersion(
                name="tanya-v7",
                base_model="smollm2",
                path="/a/v7",
                status=AdapterStatus.active,
                activated_at=utcnow(),
            )
        )
        session.add(TrainingJob(requested_by=ADMIN, status=JobStatus.succeeded, finished_at=utcnow()))

    for user in (NOBODY, ADMIN):
        assert bot.send_event(slack.app_home_opened(user)).status == 200
    bot.settle()
    published = {
        call.args["user_id"]: json.dumps(call.args["view"], ensure_ascii=False)
        for call in bot.emulator.calls_to("views.publish")
    }
    assert set(published) == {NOBODY, ADMIN}
    for view in published.values():
        assert '"type": "home"' in view
        assert "tanya-v7" in view and "Why is the build server slow?" in view
        assert "0↑ 2↓" in view and "succeeded" in view
    assert "Salary bands" not in published[NOBODY], "DM questions are not shown to everyone"
    assert "Salary bands" in published[ADMIN]
