"""Slack failing beyond one retry: 429 storms, a 500 after the message was stored, a deadline that runs out.

These bots have no language model (each question ends in an apology written into its placeholder), so
what is measured is the delivery itself: one message per question in its thread, whatever Slack did.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from typing import Any

from sqlalchemy import select

from bot.observability.metrics import REGISTRY
from bot.slack import render
from storage.models import UndeliveredAnswer
from tests.slack import slack_requests as slack

USER = "UASKER0019"


def finished(bot, channel: str, ts: str) -> list[dict[str, Any]] | None:
    """The thread once nothing in it says "Looking through the documents…" any more."""
    thread = bot.emulator.thread(channel, ts)
    if thread and all(message["text"] != render.PLACEHOLDER_TEXT for message in thread):
        return thread
    return None


def ask(bot, channel: str, ts: str, text: str = "How do I reach the VPN?") -> str:
    body = slack.event_callback(slack.app_mention(text, user=USER, channel=channel, ts=ts))
    assert bot.send_body(body).status == 200
    return body["event_id"]


def undelivered_count(stage: str) -> float:
    return REGISTRY.get_sample_value("tanya_slack_undelivered_answers_total", {"stage": stage}) or 0.0


def test_a_500_after_slack_stored_the_post_leaves_one_message(make_bot, emulator) -> None:
    bot = make_bot()
    channel, ts = "CDELIVER01", slack.new_ts()
    emulator.fail("chat.postMessage", 500, after_store=True)
    ask(bot, channel, ts)
    thread = slack.wait_until(lambda: finished(bot, channel, ts), what="the placeholder to be finished")
    bot.settle()
    assert len(thread) == 1, "the stored message was found, not posted again"
    assert "Sorry" in thread[0]["text"], "and it is the one that was updated"
    assert [call.status for call in emulator.calls_to("chat.postMessage")] == [500]
    lookups = emulator.calls_to("conversations.replies")
    assert lookups and all(
        str(call.args.get("include_all_metadata")).lower() in ("1", "true") for call in lookups
    )


def test_a_500_before_anything_was_stored_is_posted_again_once(make_bot, emulator) -> None:
    bot = make_bot()
    channel, ts = "CDELIVER02", slack.new_ts()
    emulator.fail("chat.postMessage", 503)
    ask(bot, channel, ts)
    thread = slack.wait_until(lambda: finished(bot, channel, ts), what="the placeholder to be finished")
    bot.settle()
    assert len(thread) == 1
    assert [call.status for call in emulator.calls_to("chat.postMessage")] == [503, 200]


def test_four_429s_in_a_row_wait_out_retry_after_and_post(make_bot, emulator) -> None:
    bot = make_bot()
    channel, ts = "CDELIVER03", slack.new_ts()
    emulator.fail("chat.postMessage", 429, times=4, retry_after=1)
    ask(bot, channel, ts)
    thread = slack.wait_until(lambda: finished(bot, channel, ts), timeout=60, what="the post")
    bot.settle()
    assert len(thread) == 1
    calls = emulator.calls_to("chat.postMessage")
    assert [call.status for call in calls] == [429, 429, 429, 429, 200]
    assert all(later.at - earlier.at >= 1.0 for earlier, later in pairwise(calls)), "Retry-After honoured"


def test_a_429_storm_over_many_questions_posts_each_once(make_bot, emulator) -> None:
    bot = make_bot()
    channel = "CDELIVER04"
    questions = [slack.new_ts() for _ in range(8)]
    emulator.fail("chat.postMessage", 429, times=12, retry_after=1)
    emulator.fail("chat.update", 429, times=6, retry_after=1)
    with ThreadPoolExecutor(max_workers=8) as senders:
        list(senders.map(lambda ts: ask(bot, channel, ts, f"Question {ts}?"), questions))
    for ts in questions:
        thread = slack.wait_until(lambda ts=ts: finished(bot, channel, ts), timeout=90, what=f"question {ts}")
        assert len(thread) == 1, (ts, thread)
    bot.settle()
    statuses = [call.status for call in emulator.calls_to("chat.postMessage")]
    assert statuses.count(429) == 12 and statuses.count(200) == len(questions)


def test_rate_limited_past_the_deadline_is_recorded_as_undelivered(make_bot, emulator, caplog) -> None:
    bot = make_bot(slack_retry_seconds=2.5)
    channel, ts = "CDELIVER05", slack.new_ts()
    emulator.fail("chat.postMessage", 429, times=100, retry_after=1)
    before = undelivered_count("placeholder")
    with caplog.at_level(logging.ERROR, logger="bot.slack.answering"):
        event_id = ask(bot, channel, ts)

        def recorded() -> list[UndeliveredAnswer]:
            with bot.database.session() as session:
                return list(session.scalars(select(UndeliveredAnswer)))

        rows = slack.wait_until(recorded, timeout=30, what="the undelivered answer to be recorded")
        bot.settle()
    assert [(row.event_id, row.channel_id, row.question_ts, row.stage, row.user_id) for row in rows] == [
        (event_id, channel, ts, "placeholder", USER)
    ]
    assert "ratelimited" in rows[0].error
    assert undelivered_count("placeholder") == before + 1
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.slack.answering"]
    assert any(event_id in line and "could not be delivered" in line for line in lines), lines
    assert all(r.exc_info is None for r in caplog.records if r.name == "bot.slack.answering")
    assert emulator.thread(channel, ts) == [], "nothing was posted"
    refused = emulator.calls_to("chat.postMessage")
    assert 2 <= len(refused) <= 4, "retried until the deadline, then stopped"
