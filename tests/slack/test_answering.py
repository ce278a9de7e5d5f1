"""Questions answered end to end by the real service: threads, sources, origins, follow-ups, long input."""

from __future__ import annotations

from itertools import pairwise

import pytest

from bot.slack import render
from storage import ChannelKind
from tests.slack import slack_requests as slack
from tests.slack.emulator import BOT_USER_ID

pytestmark = pytest.mark.model

USER = "UASKER0001"
MENTION = f"<@{BOT_USER_ID}>"


def assert_update_rate(bot, channel: str, ts: str) -> None:
    """At most about one chat.update per second for one message (Slack's tolerance)."""
    times = [
        c.at
        for c in bot.emulator.calls_to("chat.update")
        if c.args["channel"] == channel and c.args["ts"] == ts
    ]
    gaps = [later - earlier for earlier, later in pairwise(times)]
    assert all(gap >= 0.95 for gap in gaps), gaps


def test_a_mention_is_answered_in_its_thread_with_sources_and_buttons(make_bot) -> None:
    bot = make_bot(model=True)
    channel, ts = "CPUBLIC001", slack.new_ts()
    reply = bot.send_event(
        slack.app_mention("How do I connect to the VPN from home?", user=USER, channel=channel, ts=ts)
    )
    assert reply.status == 200

    answer = bot.wait_for_answer(channel, ts)
    bot.settle()
    posts = [c for c in bot.emulator.calls_to("chat.postMessage") if c.args["channel"] == channel]
    assert len(posts) == 1, "one message per answer: the placeholder is updated in place"
    assert posts[0].args["thread_ts"] == ts and posts[0].args["text"] == render.PLACEHOLDER_TEXT
    assert answer["thread_ts"] == ts and answer["updates"] >= 1
    assert_update_rate(bot, channel, answer["ts"])

    [interaction] = bot.interactions()
    assert (interaction.channel_id, interaction.thread_ts, interaction.message_ts) == (
        channel,
        ts,
        answer["ts"],
    )
    assert interaction.origin is ChannelKind.public_channel, "app_mention has no channel_type: looked up"
    assert interaction.user_id == USER and interaction.question == "How do I connect to the VPN from home?"
    assert [c.args["channel"] for c in bot.emulator.calls_to("conversations.info")] == [channel]

    blocks = answer["blocks"]
    kinds = [block["type"] for block in blocks]
    assert kinds[0] == "section" and kinds[-2:] == ["actions", "context"]
    assert interaction.answer.strip() and " ".join(interaction.answer.split())[:60] in answer["text"]
    sources = [
        b["text"]["text"]
        for b in blocks
        if b["type"] == "section" and b["text"]["text"].startswith("*Sources*")
    ]
    assert sources and "`1`" in sources[0] and "vpn" in sources[0].lower()
    assert "\n>" in sources[0], "each source quotes the passage that matches the question"
    buttons = blocks[-2]["elements"]
    assert [b["action_id"] for b in buttons] == [render.VOTE_UP, render.VOTE_DOWN, render.SUGGEST]
    assert {b["value"] for b in buttons} == {str(interaction.id)}
    footer = blocks[-1]["elements"][0]["text"]
    assert f"answer #{interaction.id}" in footer and "base model" in footer


@pytest.mark.parametrize(
    ("channel", "channel_type", "text", "origin"),
    [
        ("DDIRECT001", "im", "How many days of annual leave do I get?", ChannelKind.direct_message),
        (
            "GPRIVATE01",
            "group",
            f"{MENTION} How many days of annual leave do I get?",
            ChannelKind.private_channel,
        ),
        (
            "GMPIM00001",
            "mpim",
            f"{MENTION} How many days of annual leave do I get?",
            ChannelKind.private_channel,
        ),
        (
            "CPUBLIC002",
            "channel",
            f"{MENTION} How many days of annual leave do I get?",
            ChannelKind.public_channel,
        ),
    ],
    ids=["dm", "private-channel", "group-dm", "public-channel"],
)
def test_origin_is_recorded_from_the_channel_type(make_bot, channel, channel_type, text, origin) -> None:
    bot = make_bot(model=True)
    ts = slack.new_ts()
    bot.send_event(slack.message(text, user=USER, channel=channel, channel_type=channel_type, ts=ts))
    bot.wait_for_answer(channel, ts)
    [interaction] = bot.interactions()
    assert interaction.origin is origin
    assert interaction.question == "How many days of annual leave do I get?"
    assert bot.emulator.calls_to("conversations.info") == [], "message events say the channel type themselves"


def test_a_follow_up_in_the_thread_uses_the_earlier_turns(make_bot) -> None:
    bot = make_bot(model=True)
    channel, root = "CPUBLIC003", slack.new_ts()
    bot.send_event(slack.app_mention("How do I connect to the VPN?", user=USER, channel=channel, ts=root))
    first = bot.wait_for_answer(channel, root)
    bot.settle()

    follow_up = slack.message(
        "And what if the connection drops?",
        user=USER,
        channel=channel,
        channel_type="channel",
        thread_ts=root,
    )
    bot.send_event(follow_up)
    bot.settle()
    answers = [m for m in bot.emulator.thread(channel, root) if m["ts"] != first["ts"]]
    assert len(answers) == 1, "a follow-up in tanya's thread needs no @mention"
    earlier, later = bot.interactions()
    assert later.thread_ts == root and later.message_ts == answers[0]["ts"]
    assert later.question == "And what if the connection drops?"
    transcript = " ".join(str(message) for message in later.messages)
    assert "How do I connect to the VPN?" in transcript and earlier.answer[:40] in transcript


def test_a_40000_character_question_is_answered_with_a_notice(make_bot) -> None:
    bot = make_bot(model=True)
    channel, ts = "CPUBLIC004", slack.new_ts()
    question = "How do I connect to the VPN? " + "Please explain in detail. " * 1600
    question = question[:40_000]
    reply = bot.send_event(slack.app_mention(question, user=USER, channel=channel, ts=ts))
    assert reply.status == 200
    answer = bot.wait_for_answer(channel, ts)
    notices = [b for b in answer["blocks"] if b["type"] == "context" and ":warning:" in str(b)]
    assert notices and "4,000" in str(notices[0])
    [interaction] = bot.interactions()
    assert interaction.origin is ChannelKind.public_channel
