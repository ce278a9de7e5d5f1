"""The database goes away mid-traffic and comes back: nothing that was acknowledged is lost.

One answer is saved before the outage; a second is being written when the database goes, so it is
delivered but saved late; a question asked during the outage is answered once the database is back;
votes given and withdrawn during the outage are applied in ``event_ts`` order. Counted exactly, on
SQLite (a failing engine) and on PostgreSQL (the test's own database refusing connections).
"""

from __future__ import annotations

import os
import time
from typing import Any

from sqlalchemy import select

from bot.slack import render
from storage.models import ProcessedEvent
from tests.slack import slack_requests as slack
from tests.slack.outage import ANSWER_TEXT, HeldRag, Outage

ASKER = "UASKER0042"
# TANYA_TEST_OUTAGE_SECONDS holds the database down at least this long (default: only as long as the
# scenario takes, about a second): for measuring a 20-60 s outage by hand, not for CI.
OUTAGE_SECONDS = float(os.environ.get("TANYA_TEST_OUTAGE_SECONDS", "0"))


def ask(bot, channel: str) -> str:
    ts = slack.new_ts()
    body = slack.event_callback(
        slack.app_mention("How do I reach the VPN?", user=ASKER, channel=channel, ts=ts)
    )
    assert bot.send_body(body).status == 200
    return ts


def answered(bot, channel: str, ts: str) -> dict[str, Any] | None:
    thread = bot.emulator.thread(channel, ts)
    return thread[0] if thread and ANSWER_TEXT in thread[0]["text"] else None


def react(bot, kind: str, name: str, user: str, channel: str, ts: str) -> None:
    assert bot.send_event(slack.reaction(kind, name, user=user, channel=channel, ts=ts)).status == 200


def test_an_outage_loses_no_question_answer_or_vote(make_bot, database_url: str, request) -> None:
    bot = make_bot(database_url=database_url, claim_lease_seconds=3)
    rag = HeldRag()
    bot.service.__dict__["rag"] = rag
    admin = request.getfixturevalue("postgres_admin_url") if database_url.startswith("postgresql") else None
    outage = Outage(bot.database, admin)
    outbox = bot.service.outbox

    # Before: one answer saved, and a 👍 on it that the outage will see withdrawn.
    saved_channel = "COUTAGE01"
    saved_q = ask(bot, saved_channel)
    saved = slack.wait_until(lambda: answered(bot, saved_channel, saved_q), what="the first answer")
    slack.wait_until(lambda: bot.interactions(message_ts=saved["ts"]), what="the first answer saved")
    react(bot, "reaction_added", "+1", "UVOTER0002", saved_channel, saved["ts"])
    bot.settle()

    # An answer being written when the database goes.
    written_channel = "COUTAGE02"
    rag.hold()
    written_q = ask(bot, written_channel)
    assert rag.generating.wait(30), "generation started"
    outage.cut()
    cut_at = time.monotonic()
    try:
        rag.release()
        written = slack.wait_until(
            lambda: answered(bot, written_channel, written_q), what="the unsaved answer"
        )
        assert "not saved yet" in str(written["blocks"]), "the answer says it is not saved yet"
        # During the outage: a question, and votes (added, withdrawn, switched).
        deferred_channel = "COUTAGE03"
        deferred_q = ask(bot, deferred_channel)
        react(bot, "reaction_added", "+1", "UVOTER0001", saved_channel, saved["ts"])
        react(bot, "reaction_removed", "+1", "UVOTER0002", saved_channel, saved["ts"])
        react(bot, "reaction_added", "-1", "UVOTER0003", saved_channel, saved["ts"])
        react(bot, "reaction_removed", "-1", "UVOTER0003", saved_channel, saved["ts"])
        react(bot, "reaction_added", "+1", "UVOTER0003", saved_channel, saved["ts"])
        react(bot, "reaction_added", "+1", "UVOTER0004", written_channel, written["ts"])
        bot.settle()
        if OUTAGE_SECONDS:  # a longer outage on request (the 20-60 s figure); CI keeps it short
            time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - cut_at)))
        spooled = outbox.depth()
        assert bot.emulator.thread(deferred_channel, deferred_q) == [], (
            "not answered while it cannot be claimed"
        )
    finally:
        outage.restore()
        lasted = time.monotonic() - cut_at

    slack.wait_until(lambda: outbox.depth() == 0, timeout=60, what="the spool to drain")
    slack.wait_until(
        lambda: answered(bot, deferred_channel, deferred_q), timeout=60, what="the deferred answer"
    )
    slack.wait_until(lambda: outbox.depth() == 0 and bot.idle(), timeout=60, what="quiet")

    threads = {
        channel: bot.emulator.thread(channel, ts)
        for channel, ts in (
            (saved_channel, saved_q),
            (written_channel, written_q),
            (deferred_channel, deferred_q),
        )
    }
    rows = bot.interactions()
    saved_for = {(row.channel_id, row.message_ts) for row in rows}
    lost = sum(1 for channel, thread in threads.items() if (channel, thread[0]["ts"]) not in saved_for)
    duplicates = sum(len(thread) - 1 for thread in threads.values())
    saved_id = next(row.id for row in rows if row.message_ts == saved["ts"])
    written_id = next(row.id for row in rows if row.message_ts == written["ts"])
    votes = {user: value for user, value, _ in bot.votes(saved_id)}
    print(
        f"{bot.database.engine.dialect.name}: {lasted:.0f} s outage, "
        f"{spooled} items spooled during it; "
        f"questions lost {lost}/3, duplicate messages {duplicates}, votes {votes}"
    )
    assert len(rows) == 3 and lost == 0 and duplicates == 0
    assert all(render.PLACEHOLDER_TEXT not in thread[0]["text"] for thread in threads.values())
    assert votes == {"UVOTER0001": 1, "UVOTER0003": 1}, "the withdrawn 👍 is gone, the switch kept"
    assert [(user, value) for user, value, _ in bot.votes(written_id)] == [("UVOTER0004", 1)]
    with bot.database.session() as session:
        unfinished = session.scalars(
            select(ProcessedEvent.event_id).where(
                ProcessedEvent.kind == "answer", ProcessedEvent.finished_at.is_(None)
            )
        ).all()
    assert unfinished == [], "every answer's claim is finished"
    notes = [call.args["text"] for call in bot.emulator.calls_to("chat.postEphemeral")]
    assert render.DEFERRED in notes, "the asker was told the question waits for the database"
    assert any("saved as soon as it is back" in note for note in notes), "voters were told the truth"
    assert outbox.spool.dead() == 0
