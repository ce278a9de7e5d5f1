"""What an operator sees of a running bot: /metrics scraped over HTTP, and JSON log lines.

Metrics live in one registry per process, shared by every bot a test session starts, so each test
compares a scrape before with a scrape after instead of expecting absolute values.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot.observability.logs import JsonFormatter
from bot.slack.serve import start_ops
from tests.bot.observability.scrape import Scrape, delta, scrape
from tests.slack import slack_requests as slack
from tests.slack.test_feedback import record_answer

ASKER = "UASKER0009"
VOTER = "UVOTER0009"


def metrics_of(bot) -> Scrape:
    return scrape(f"{bot.server.url}/metrics")


@pytest.mark.model
def test_metrics_follow_a_mention_its_retry_and_a_reaction(make_bot) -> None:
    bot = make_bot(model=True)
    before = metrics_of(bot)
    channel, ts = "COBSERVE01", slack.new_ts()
    body = slack.event_callback(
        slack.app_mention("How do I connect to the VPN?", user=ASKER, channel=channel, ts=ts)
    )
    assert bot.send_body(body).status == 200
    answer = bot.wait_for_answer(channel, ts)
    assert bot.send_body(body, retry_num=1).status == 200, "Slack retries: acknowledged, not answered"
    bot.settle()
    reaction = slack.reaction("reaction_added", "+1", user=VOTER, channel=channel, ts=answer["ts"])
    assert bot.send_event(reaction).status == 200
    bot.settle()
    after = metrics_of(bot)

    assert delta(before, after, "tanya_slack_events_total", type="app_mention") == 2
    assert delta(before, after, "tanya_slack_events_total", type="reaction_added") == 1
    assert delta(before, after, "tanya_slack_retried_deliveries_total") == 1
    assert delta(before, after, "tanya_slack_duplicates_suppressed_total", kind="event") == 1

    answered = delta(before, after, "tanya_answers_total", outcome="answered")
    not_found = delta(before, after, "tanya_answers_total", outcome="not_found")
    assert answered + not_found == 1 and delta(before, after, "tanya_answers_total") == 1
    for stage in ("total", "retrieval"):
        assert delta(before, after, "tanya_answer_duration_seconds_count", stage=stage) == 1, stage
    assert delta(before, after, "tanya_answer_duration_seconds_count", stage="generation") == answered
    assert delta(before, after, "tanya_answer_duration_seconds_sum", stage="total") > 0
    assert delta(before, after, "tanya_slack_answer_duration_seconds_count") == 1
    assert after.value("tanya_slack_answers_in_flight") == 0

    assert delta(before, after, "tanya_votes_total", direction="up", source="reaction") == 1
    assert delta(before, after, "tanya_votes_total") == 1
    [adapter] = after.labels_of("tanya_active_adapter_info")
    assert adapter == {"version": "base"}
    assert after.types["tanya_answer_duration_seconds"] == "histogram"
    assert after.value("process_resident_memory_bytes") > 0


def test_failures_and_slack_api_trouble_are_counted(make_bot) -> None:
    """A bot whose model fails apologises; a Slack API that answers 500 is retried, a 400 counted."""
    bot = make_bot()
    before = metrics_of(bot)
    channel, ts = "COBSERVE02", slack.new_ts()
    assert (
        bot.send_event(slack.app_mention("Is anyone there?", user=ASKER, channel=channel, ts=ts)).status
        == 200
    )
    bot.settle()
    answer_id, answer_ts, _ = record_answer(bot, channel=channel)
    # The 👍's thank-you note: three 500s are retried (until the deadline), then a 400 is not.
    bot.emulator.fail("chat.postEphemeral", 500, times=3)
    bot.emulator.fail("chat.postEphemeral", 400)
    reaction = slack.reaction("reaction_added", "-1", user=VOTER, channel=channel, ts=answer_ts)
    assert bot.send_event(reaction).status == 200
    bot.settle()
    after = metrics_of(bot)

    assert delta(before, after, "tanya_answers_total", outcome="error") == 1
    assert delta(before, after, "tanya_answers_total", outcome="answered") == 0
    assert delta(before, after, "tanya_slack_answer_duration_seconds_count") == 0, "an apology is no answer"
    assert bot.votes(answer_id) == [(VOTER, -1, "reaction")]
    assert delta(before, after, "tanya_votes_total", direction="down", source="reaction") == 1
    assert delta(before, after, "tanya_slack_api_retries_total", reason="server_error") == 3
    assert (
        delta(before, after, "tanya_slack_api_errors_total", method="chat.postEphemeral", error="fatal_error")
        == 1
    )


def test_the_operator_endpoints_need_no_signature_and_can_be_served_alone(make_bot) -> None:
    """What Socket Mode serves on TANYA_METRICS_PORT, and HTTP mode next to /slack/events."""
    bot = make_bot()
    ops = start_ops(bot.runtime, "127.0.0.1", 0)
    try:
        for base in (bot.server.url, ops.url):
            assert scrape(f"{base}/metrics").types["tanya_answers"] == "counter"
            assert slack.get(f"{base}/healthz").json() == {"status": "ok"}
            assert slack.get(f"{base}/readyz").json()["status"] == "ok"
        assert slack.get(f"{ops.url}/slack/events").status == 404, "the ops port serves no Slack traffic"
        assert slack.post(f"{bot.server.url}/metrics", "{}").status == 404, "only GET is for operators"
    finally:
        ops.stop()


@pytest.fixture
def json_log_lines() -> Iterator[io.StringIO]:
    """Everything tanya's own loggers write at INFO and above, formatted as in TANYA_LOG_FORMAT=json."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("bot")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.mark.model
def test_answer_logs_are_json_lines_with_the_event_and_answer_ids(make_bot, json_log_lines) -> None:
    bot = make_bot(model=True)
    channel, ts, event_id = "COBSERVE03", slack.new_ts(), slack.unique("EvLOG")
    mention = slack.app_mention("How many days of annual leave do I get?", user=ASKER, channel=channel, ts=ts)
    assert bot.send_event(mention, event_id=event_id).status == 200
    bot.wait_for_answer(channel, ts)
    bot.settle()
    [interaction] = bot.interactions(channel_id=channel)

    lines = json_log_lines.getvalue().splitlines()
    assert lines, "the answer was logged"
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    for record in records:
        assert {"time", "level", "logger", "message"} <= record.keys(), record
        assert record["event_id"] == event_id and record["channel"] == channel, record
    answered = [record for record in records if record.get("interaction_id") == interaction.id]
    assert answered and answered[-1]["level"] == "INFO" and answered[-1]["logger"] == "bot.slack.answering"
