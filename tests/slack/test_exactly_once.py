"""However often Slack delivers a question — retries, concurrent copies, two bot processes — one answer."""

from __future__ import annotations

import json
import threading

import pytest

from tests.slack import slack_requests as slack
from tests.slack.emulator import BOT_USER_ID

pytestmark = pytest.mark.model

USER = "UASKER0002"


def placeholders(bot, channel: str, thread_ts: str) -> list:
    return [
        call
        for call in bot.emulator.calls_to("chat.postMessage")
        if call.args["channel"] == channel and call.args.get("thread_ts") == thread_ts
    ]


def post_together(urls: list[str], body: dict, headers: list[dict[str, str]]) -> list[int]:
    """POST the same body to each url at the same moment, one thread each."""
    start, statuses = threading.Barrier(len(urls)), [0] * len(urls)
    data = json.dumps(body)

    def send(index: int) -> None:
        start.wait()
        statuses[index] = slack.post(urls[index], data, headers=headers[index]).status

    threads = [threading.Thread(target=send, args=(index,)) for index in range(len(urls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_retried_deliveries_produce_one_answer(make_bot) -> None:
    bot = make_bot(model=True)
    channel, ts = "CONCE00001", slack.new_ts()
    body = slack.event_callback(
        slack.app_mention("How do I connect to the VPN?", user=USER, channel=channel, ts=ts)
    )
    assert bot.send_body(body).status == 200
    for retry in (1, 2, 3):
        assert bot.send_body(body, retry_num=retry).status == 200
    bot.wait_for_answer(channel, ts)
    bot.settle()
    assert len(placeholders(bot, channel, ts)) == 1
    assert len(bot.interactions(channel_id=channel)) == 1


def test_concurrent_duplicates_and_both_event_types_produce_one_answer(make_bot) -> None:
    bot = make_bot(model=True)
    channel, ts = "CONCE00002", slack.new_ts()
    mention = slack.event_callback(
        slack.app_mention("How many leave days do I get?", user=USER, channel=channel, ts=ts)
    )
    statuses = post_together([bot.events_url] * 6, mention, [{}] * 6)
    # Slack also sends the same message as a `message` event, with its own event id.
    as_message = slack.message(
        f"<@{BOT_USER_ID}> How many leave days do I get?",
        user=USER,
        channel=channel,
        channel_type="channel",
        ts=ts,
    )
    assert bot.send_event(as_message).status == 200
    assert statuses == [200] * 6
    bot.wait_for_answer(channel, ts)
    bot.settle()
    assert len(placeholders(bot, channel, ts)) == 1
    [interaction] = bot.interactions(channel_id=channel)
    assert interaction.message_ts == bot.emulator.thread(channel, ts)[0]["ts"]


@pytest.mark.postgres
def test_two_bot_processes_on_postgresql_answer_once(make_bot, postgres_url) -> None:
    first = make_bot(model=True, database_url=postgres_url)
    second = make_bot(model=True, database_url=postgres_url)
    channel, ts = "CONCE00003", slack.new_ts()
    body = slack.event_callback(
        slack.app_mention("How do I connect to the VPN?", user=USER, channel=channel, ts=ts)
    )
    statuses = post_together(
        [first.events_url, second.events_url, first.events_url, second.events_url],
        body,
        [{}, {}, {"X-Slack-Retry-Num": "1"}, {"X-Slack-Retry-Num": "1"}],
    )
    assert statuses == [200] * 4
    first.wait_for_answer(channel, ts)
    first.settle()
    second.settle()
    assert len(placeholders(first, channel, ts)) == 1
    assert len(first.interactions(channel_id=channel)) == 1
    assert first.database.is_postgresql
