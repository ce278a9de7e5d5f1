"""Slack pushing back (429 with Retry-After, 5xx): the answer is retried and still delivered."""

from __future__ import annotations

import pytest

from tests.slack import slack_requests as slack

pytestmark = pytest.mark.model

USER = "UASKER0003"


def test_rate_limited_post_is_retried_after_retry_after(make_bot, emulator) -> None:
    bot = make_bot(model=True)
    channel, ts = "CLIMITS001", slack.new_ts()
    emulator.fail("chat.postMessage", 429, retry_after=1)
    bot.send_event(slack.app_mention("How do I connect to the VPN?", user=USER, channel=channel, ts=ts))
    bot.wait_for_answer(channel, ts)
    bot.settle()
    refused, delivered = emulator.calls_to("chat.postMessage")
    assert (refused.status, delivered.status) == (429, 200)
    assert delivered.at - refused.at >= 1.0, "waited for Retry-After"
    assert len(emulator.thread(channel, ts)) == 1, "retried, not duplicated"


def test_server_errors_on_update_are_retried(make_bot, emulator) -> None:
    bot = make_bot(model=True)
    channel, ts = "CLIMITS002", slack.new_ts()
    emulator.fail("chat.update", 503, times=2)
    bot.send_event(slack.app_mention("How many leave days do I get?", user=USER, channel=channel, ts=ts))
    answer = bot.wait_for_answer(channel, ts)
    assert answer["text"].strip()
    assert [call.status for call in emulator.calls_to("chat.update")][:3] == [503, 503, 200]
