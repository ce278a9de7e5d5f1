"""👍/👎 from reactions and buttons, corrections from thread replies and the form, and failures to store them."""

from __future__ import annotations

import json

from sqlalchemy import select

from bot.slack import render
from storage import Correction, Database
from storage.interactions import NewInteraction, record_interaction
from tests.slack import slack_requests as slack
from tests.slack.emulator import BOT_USER_ID

CHANNEL = "CFEEDBACK1"


def record_answer(
    bot, *, channel: str = CHANNEL, question: str = "How do I reach the VPN?"
) -> tuple[int, str, str]:
    """An answer as the bot would have recorded it: (interaction id, answer ts, thread ts)."""
    thread_ts, answer_ts = slack.new_ts(), slack.new_ts()
    with bot.database.session() as session:
        interaction = record_interaction(
            session,
            NewInteraction(
                question=question,
                answer="Open vpn.example.com [1].",
                prompt="<prompt>",
                generator="test",
                channel_id=channel,
                thread_ts=thread_ts,
                message_ts=answer_ts,
                user_id="UASKER0001",
            ),
        )
        return interaction.id, answer_ts, thread_ts


def react(bot, kind: str, name: str, *, user: str, ts: str, channel: str = CHANNEL, **extra) -> None:
    reply = bot.send_event(slack.reaction(kind, name, user=user, channel=channel, ts=ts, **extra))
    assert reply.status == 200
    bot.settle()


def ephemerals_to(bot, user: str) -> list[str]:
    return [
        call.args["text"] for call in bot.emulator.calls_to("chat.postEphemeral") if call.args["user"] == user
    ]


def corrections(database: Database, interaction_id: int) -> list[tuple[str, str, str]]:
    with database.session() as session:
        rows = session.scalars(select(Correction).where(Correction.interaction_id == interaction_id))
        return [(row.user_id, row.text, row.source) for row in rows]


def test_reactions_set_change_and_withdraw_a_single_vote(make_bot) -> None:
    bot = make_bot()
    answer_id, answer_ts, _ = record_answer(bot)
    user = "UVOTER0001"

    react(bot, "reaction_added", "+1", user=user, ts=answer_ts)
    assert bot.votes(answer_id) == [(user, 1, "reaction")]

    react(bot, "reaction_added", "-1::skin-tone-3", user=user, ts=answer_ts)
    assert bot.votes(answer_id) == [(user, -1, "reaction")], "switching to 👎 changes the one vote"

    react(bot, "reaction_removed", "+1", user=user, ts=answer_ts)
    assert bot.votes(answer_id) == [(user, -1, "reaction")], "removing the stale 👍 keeps the 👎"

    react(bot, "reaction_removed", "-1::skin-tone-3", user=user, ts=answer_ts)
    assert bot.votes(answer_id) == []

    react(bot, "reaction_added", "thumbsup::skin-tone-5", user=user, ts=answer_ts)
    react(bot, "reaction_added", "thumbsup", user=user, ts=answer_ts)
    assert bot.votes(answer_id) == [(user, 1, "reaction")]

    react(bot, "reaction_added", "thumbsdown", user="UVOTER0002", ts=answer_ts)
    assert sorted(bot.votes(answer_id)) == [(user, 1, "reaction"), ("UVOTER0002", -1, "reaction")]

    thanks = ephemerals_to(bot, user)
    assert len(thanks) == 4 and all("Thanks" in text for text in thanks)
    assert bot.emulator.calls_to("chat.postMessage") == [], "feedback never posts in the channel"


def test_reaction_while_the_answer_is_still_being_written_is_kept(make_bot) -> None:
    """People react to the streaming message before its answer is recorded: the vote must not be lost."""
    from bot.slack.once import claim, in_progress_key

    bot = make_bot()
    thread_ts, answer_ts = slack.new_ts(), slack.new_ts()
    claim(bot.database, in_progress_key(CHANNEL, answer_ts), "writing")  # as the answering side does
    reply = bot.send_event(
        slack.reaction("reaction_added", "+1", user="UEARLY0001", channel=CHANNEL, ts=answer_ts)
    )
    assert reply.status == 200
    with bot.database.session() as session:
        interaction = record_interaction(
            session,
            NewInteraction(
                question="Is the VPN down?",
                answer="No [1].",
                prompt="<prompt>",
                generator="test",
                channel_id=CHANNEL,
                thread_ts=thread_ts,
                message_ts=answer_ts,
            ),
        )
        answer_id = interaction.id
    bot.settle()
    assert bot.votes(answer_id) == [("UEARLY0001", 1, "reaction")]


def test_retried_reaction_event_counts_once(make_bot) -> None:
    bot = make_bot()
    answer_id, answer_ts, _ = record_answer(bot)
    body = slack.event_callback(
        slack.reaction("reaction_added", "+1", user="UVOTER0003", channel=CHANNEL, ts=answer_ts)
    )
    for retry in (None, 1, 2):
        assert bot.send_body(body, retry_num=retry).status == 200
    bot.settle()
    assert bot.votes(answer_id) == [("UVOTER0003", 1, "reaction")]
    assert len(ephemerals_to(bot, "UVOTER0003")) == 1


def test_reactions_on_other_messages_are_ignored(make_bot) -> None:
    bot = make_bot()
    answer_id, answer_ts, _ = record_answer(bot)
    someone_elses = slack.new_ts()
    react(bot, "reaction_added", "+1", user="UVOTER0004", ts=someone_elses, item_user="UOTHER0001")
    react(bot, "reaction_added", "+1", user="UVOTER0004", ts=slack.new_ts())  # a bot message, not an answer
    react(bot, "reaction_added", "-1", user="UVOTER0004", ts=answer_ts, channel="COTHER0001")
    react(bot, "reaction_added", "heart", user="UVOTER0004", ts=answer_ts)
    react(bot, "reaction_added", "+1", user=BOT_USER_ID, ts=answer_ts)
    file_reaction = slack.reaction("reaction_added", "+1", user="UVOTER0004", channel=CHANNEL, ts=answer_ts)
    file_reaction["item"] = {"type": "file", "file": "F123"}
    assert bot.send_event(file_reaction).status == 200
    bot.settle()
    assert bot.votes(answer_id) == []
    assert bot.emulator.calls_to("chat.postEphemeral") == []


def _button(
    bot, action_id: str, answer_id: int, answer_ts: str, thread_ts: str, user: str, name: str
) -> None:
    body = slack.block_action(
        action_id,
        str(answer_id),
        user=user,
        channel=CHANNEL,
        message_ts=answer_ts,
        thread_ts=thread_ts,
        response_url=bot.emulator.response_url(name),
    )
    assert bot.interact(body).status == 200
    bot.settle()


def test_vote_buttons_vote_like_reactions_and_answer_privately(make_bot) -> None:
    bot = make_bot()
    answer_id, answer_ts, thread_ts = record_answer(bot)
    _button(bot, render.VOTE_UP, answer_id, answer_ts, thread_ts, "UBUTTON001", "up")
    assert bot.votes(answer_id) == [("UBUTTON001", 1, "button")]
    _button(bot, render.VOTE_DOWN, answer_id, answer_ts, thread_ts, "UBUTTON001", "down")
    assert bot.votes(answer_id) == [("UBUTTON001", -1, "button")]
    up, down = bot.emulator.responses("up"), bot.emulator.responses("down")
    assert len(up) == 1 and up[0].args["response_type"] == "ephemeral" and "👍" in up[0].args["text"]
    assert down[0].args["replace_original"] is False and "reply in this thread" in down[0].args["text"]


def test_thread_reply_after_a_downvote_is_stored_as_a_correction(make_bot) -> None:
    bot = make_bot()
    answer_id, answer_ts, thread_ts = record_answer(bot)
    critic = "UCRITIC001"
    react(bot, "reaction_added", "-1", user=critic, ts=answer_ts)

    reply = slack.message(
        "It's vpn2.example.com since March &amp; you need 2FA.",
        user=critic,
        channel=CHANNEL,
        channel_type="channel",
        thread_ts=thread_ts,
    )
    assert bot.send_event(reply).status == 200
    bot.settle()
    assert corrections(bot.database, answer_id) == [
        (critic, "It's vpn2.example.com since March & you need 2FA.", "slack_thread")
    ]
    assert any("correction" in text for text in ephemerals_to(bot, critic))
    assert bot.emulator.calls_to("chat.postMessage") == [], "a correction is not a question"

    # Someone who did not vote 👎 is asking a follow-up, not correcting (this bot has no model: it apologises).
    follow_up = slack.message(
        "And from abroad?", user="UOTHER0002", channel=CHANNEL, channel_type="channel", thread_ts=thread_ts
    )
    bot.send_event(follow_up)
    bot.settle()
    assert len(corrections(bot.database, answer_id)) == 1
    posted = bot.emulator.thread(CHANNEL, thread_ts)
    assert len(posted) == 1 and "Sorry" in posted[0]["text"] and "Traceback" not in posted[0]["text"]

    # Chatter in a thread tanya never answered is none of its business.
    bot.send_event(
        slack.message(
            "lunch?", user="UOTHER0002", channel=CHANNEL, channel_type="channel", thread_ts=slack.new_ts()
        )
    )
    bot.settle()
    assert len(bot.emulator.calls_to("chat.postMessage")) == 1


def test_suggest_a_better_answer_form(make_bot) -> None:
    bot = make_bot()
    answer_id, answer_ts, thread_ts = record_answer(bot, question="Where is the <VPN> portal?")
    _button(bot, render.SUGGEST, answer_id, answer_ts, thread_ts, "USUGGEST01", "suggest")
    opened = bot.emulator.calls_to("views.open")
    assert len(opened) == 1 and opened[0].args["trigger_id"].startswith("trigger.")
    view = opened[0].args["view"]
    assert view["callback_id"] == render.SUGGEST_VIEW and "&lt;VPN&gt;" in json.dumps(view)
    metadata = view["private_metadata"]

    empty = bot.interact(
        slack.view_submission(
            render.SUGGEST_VIEW,
            user="USUGGEST01",
            private_metadata=metadata,
            values={render.SUGGEST_BLOCK: {render.SUGGEST_INPUT: {"value": " "}}},
        )
    )
    assert empty.status == 200 and empty.json()["response_action"] == "errors"

    values = {
        render.SUGGEST_BLOCK: {
            render.SUGGEST_INPUT: {"type": "plain_text_input", "value": "vpn2.example.com"}
        }
    }
    saved = bot.interact(
        slack.view_submission(
            render.SUGGEST_VIEW, user="USUGGEST01", private_metadata=metadata, values=values
        )
    )
    assert saved.status == 200
    assert saved.json()["response_action"] == "update" and "Thank you" in saved.body
    bot.settle()
    assert corrections(bot.database, answer_id) == [("USUGGEST01", "vpn2.example.com", "slack_modal")]


def test_feedback_while_the_database_is_down_is_kept_and_saved_when_it_is_back(make_bot) -> None:
    """Reactions, buttons, the form and thread-reply corrections all wait in the spool; nobody is misled."""
    bot = make_bot()
    answer_id, answer_ts, thread_ts = record_answer(bot)
    critic = "UCRITIC002"
    react(bot, "reaction_added", "-1", user=critic, ts=answer_ts)
    bot.settle()
    working = bot.service._database
    bot.service._database = Database("postgresql+psycopg://tanya@127.0.0.1:9/down?connect_timeout=2")
    try:
        react(bot, "reaction_added", "+1", user="UUNLUCKY01", ts=answer_ts)
        bot.settle()
        _button(bot, render.VOTE_DOWN, answer_id, answer_ts, thread_ts, "UUNLUCKY01", "down")
        submission = bot.interact(
            slack.view_submission(
                render.SUGGEST_VIEW,
                user="UUNLUCKY02",
                private_metadata=json.dumps({"id": answer_id}),
                values={render.SUGGEST_BLOCK: {render.SUGGEST_INPUT: {"value": "better"}}},
            )
        )
        reply = slack.message(
            "It is vpn2.example.com now.",
            user=critic,
            channel=CHANNEL,
            channel_type="channel",
            thread_ts=thread_ts,
        )
        assert bot.send_event(reply).status == 200
        chatter = slack.message(
            "lunch?", user="UOTHER0003", channel=CHANNEL, channel_type="channel", thread_ts=slack.new_ts()
        )
        assert bot.send_event(chatter).status == 200
        bot.settle()
        assert corrections(working, answer_id) == [] and bot.service.outbox.depth() == 5
    finally:
        bot.service._database.dispose()
        bot.service._database = working
    notes = ephemerals_to(bot, "UUNLUCKY01")
    assert len(notes) == 1 and "will be saved as soon as it is back" in notes[0]
    button = bot.emulator.responses("down")
    assert len(button) == 1 and "will be saved as soon as it is back" in button[0].args["text"]
    assert submission.json()["response_action"] == "update" and "kept safe" in submission.body
    for text in [*notes, button[0].args["text"], submission.body, *ephemerals_to(bot, critic)]:
        assert "Traceback" not in text and "psycopg" not in text
    slack.wait_until(lambda: bot.service.outbox.depth() == 0, what="the spool to be applied")
    bot.settle()
    # Applied in arrival order: the reaction's 👍, then the button's 👎 replaces it.
    assert bot.votes(answer_id) == [("UCRITIC002", -1, "reaction"), ("UUNLUCKY01", -1, "button")]
    assert sorted(corrections(bot.database, answer_id)) == [
        (critic, "It is vpn2.example.com now.", "slack_thread"),
        ("UUNLUCKY02", "better", "slack_modal"),
    ]
    assert bot.emulator.calls_to("chat.postMessage") == [], "the correction was not answered as a question"
    assert any(f"correction to answer #{answer_id} is saved" in note for note in ephemerals_to(bot, critic))
    assert ephemerals_to(bot, "UOTHER0003") == [], "chatter in a stranger's thread is left alone"
    assert bot.service.outbox.spool.dead() == 0
