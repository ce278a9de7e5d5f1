"""Which messages get an answer at all: noise, privacy switches, and failures (no language model needed)."""

from __future__ import annotations

import pytest

from tests.slack import slack_requests as slack
from tests.slack.emulator import BOT_ID, BOT_USER_ID

CHANNEL = "CMESSAGES1"
DM = "DMESSAGES1"
PRIVATE = "GMESSAGES1"
USER = "UPERSON001"
MENTION = f"<@{BOT_USER_ID}>"


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(
            slack.message(f"{MENTION} hi", user=None, channel=DM, channel_type="im", bot_id="BOTHER0001"),
            id="another-bot-without-subtype",
        ),
        pytest.param(
            slack.message(f"{MENTION} hi", user=USER, channel=DM, channel_type="im", bot_id="BOTHER0001"),
            id="another-bot-with-user",
        ),
        pytest.param(
            slack.message(
                f"{MENTION} hi",
                user=None,
                channel=DM,
                channel_type="im",
                subtype="bot_message",
                username="jira",
            ),
            id="bot-message",
        ),
        pytest.param(
            slack.message("hi", user=BOT_USER_ID, channel=DM, channel_type="im", bot_id=BOT_ID),
            id="own-message",
        ),
        pytest.param(
            slack.message(
                "",
                user=None,
                channel=DM,
                channel_type="im",
                subtype="message_changed",
                message={"user": USER, "text": f"{MENTION} edited", "ts": slack.new_ts()},
            ),
            id="edit",
        ),
        pytest.param(
            slack.message(
                "",
                user=None,
                channel=DM,
                channel_type="im",
                subtype="message_deleted",
                deleted_ts=slack.new_ts(),
            ),
            id="deletion",
        ),
        pytest.param(
            slack.message(
                f"{MENTION} hi", user=USER, channel=CHANNEL, channel_type="channel", subtype="channel_join"
            ),
            id="join",
        ),
        pytest.param(
            slack.message("just chatting", user=USER, channel=CHANNEL, channel_type="channel"),
            id="channel-chatter",
        ),
        pytest.param(
            {**slack.app_mention("hi", user=USER, channel=CHANNEL), "bot_id": "BOTHER0001"},
            id="mention-from-a-bot",
        ),
    ],
)
def test_noise_is_never_answered(make_bot, event: dict) -> None:
    bot = make_bot()
    assert bot.send_event(event).status == 200
    bot.settle()
    assert bot.emulator.calls_to("chat.postMessage") == []
    assert bot.emulator.calls_to("chat.postEphemeral") == []
    assert bot.interactions() == []


def test_direct_messages_can_be_switched_off(make_bot) -> None:
    bot = make_bot(answer_direct_messages=False)
    bot.send_event(slack.message("what is our VPN?", user=USER, channel=DM, channel_type="im"))
    bot.settle()
    assert bot.emulator.calls_to("chat.postMessage") == []
    [note] = bot.emulator.calls_to("chat.postEphemeral")
    assert note.args["user"] == USER and "direct messages" in note.args["text"]


def test_private_channels_can_be_switched_off(make_bot) -> None:
    bot = make_bot(answer_private_channels=False)
    bot.send_event(
        slack.message(f"{MENTION} what is our VPN?", user=USER, channel=PRIVATE, channel_type="group")
    )
    bot.send_event(
        slack.message(f"{MENTION} and leave?", user=USER, channel="GMPIM00001", channel_type="mpim")
    )
    bot.settle()
    assert bot.emulator.calls_to("chat.postMessage") == []
    notes = bot.emulator.calls_to("chat.postEphemeral")
    assert len(notes) == 2 and all("private channels" in note.args["text"] for note in notes)


def test_a_failure_while_answering_becomes_an_apology_in_the_thread(make_bot) -> None:
    bot = make_bot()  # its pipeline raises on every question
    ts = slack.new_ts()
    bot.send_event(slack.app_mention("how do I reach the VPN?", user=USER, channel=CHANNEL, ts=ts))
    bot.settle()
    [message] = bot.emulator.thread(CHANNEL, ts)
    assert message["text"].startswith("Sorry") and "reference" in message["text"]
    assert "RuntimeError" not in str(message) and "Traceback" not in str(message)
    assert bot.interactions() == []


def test_an_empty_mention_gets_a_hint_not_an_error(make_bot) -> None:
    bot = make_bot()
    ts = slack.new_ts()
    bot.send_event({**slack.app_mention("", user=USER, channel=CHANNEL, ts=ts), "text": MENTION})
    bot.settle()
    [message] = bot.emulator.thread(CHANNEL, ts)
    assert "question is empty" in message["text"]
