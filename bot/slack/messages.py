"""Listeners for messages and @mentions: what deserves an answer, what is a correction, what is noise.

Slack sends a channel @mention twice (``app_mention`` and ``message``); both routes end in the same
``Answerer.handle``, whose claim on the message makes it one answer. Ignored: tanya's own messages,
other bots (``bot_id`` — they send no subtype), edits, deletions and other subtypes, and thread chatter
addressed to someone else. Each listener acknowledges at once and does its work lazily.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt import Ack, App, BoltContext

from bot.observability.logs import log_context
from bot.observability.metrics import DUPLICATES
from bot.slack.answering import Answerer, Question
from bot.slack.context import SlackContext
from bot.slack.feedback import Feedback
from bot.slack.once import event_key
from bot.slack.text import clean_question, mentions
from storage import ChannelKind

log = logging.getLogger(__name__)

ANSWERABLE_SUBTYPES = frozenset({None, "thread_broadcast", "file_share"})
_ANY_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")

DM_OFF = "I don't answer direct messages in this workspace — please ask me in a channel by mentioning me."
PRIVATE_OFF = "I don't answer in private channels in this workspace — please ask me in a public channel."


def is_noise(event: dict[str, Any], bot_user_id: str | None) -> bool:
    """Messages tanya must never react to: bots (itself included), edits, deletions, joins…"""
    return bool(
        event.get("bot_id")
        or event.get("subtype") not in ANSWERABLE_SUBTYPES
        or event.get("hidden")
        or event.get("edited")
        or not event.get("user")
        or event.get("user") == bot_user_id
        or not event.get("channel")
        or not event.get("ts")
    )


def worth_a_look(event: dict[str, Any], bot_user_id: str | None) -> bool:
    """Could this message need tanya? A check without I/O, run before a lazy listener is started.

    Most messages in a busy channel are chatter: they are acknowledged by the catch-all listener
    without copying the request for a background thread, which keeps acknowledgements fast.
    """
    if is_noise(event, bot_user_id):
        return False
    thread_ts = event.get("thread_ts")
    return bool(
        event.get("channel_type") == "im"
        or str(event.get("channel", "")).startswith("D")
        or mentions(event.get("text", ""), bot_user_id)
        or (thread_ts and thread_ts != event.get("ts"))
    )


def addressed_to_someone_else(text: str, bot_user_id: str | None) -> bool:
    found = _ANY_MENTION.findall(text or "")
    return bool(found) and not mentions(text, bot_user_id)


class MessageRouter:
    """Routes @mentions, DMs and thread replies: a question to the answerer, a correction to feedback."""

    def __init__(self, ctx: SlackContext, answerer: Answerer, feedback: Feedback) -> None:
        self.ctx = ctx
        self.answerer = answerer
        self.feedback = feedback

    def on_mention(self, body: dict[str, Any], event: dict[str, Any], context: BoltContext) -> None:
        if not is_noise(event, context.bot_user_id):
            self.route(body, event, context, mentioned=True)

    def on_message(self, body: dict[str, Any], event: dict[str, Any], context: BoltContext) -> None:
        bot_user_id = context.bot_user_id
        if not is_noise(event, bot_user_id):
            self.ctx.channels.remember(event["channel"], event.get("channel_type"))
            self.route(body, event, context, mentioned=mentions(event.get("text", ""), bot_user_id))

    def route(
        self, body: dict[str, Any], event: dict[str, Any], context: BoltContext, *, mentioned: bool
    ) -> None:
        channel, ts = event["channel"], event["ts"]
        text = event.get("text") or ""
        thread_ts = event.get("thread_ts")
        in_thread = bool(thread_ts) and thread_ts != ts
        is_dm = event.get("channel_type") == "im" or channel.startswith("D")
        if not (is_dm or mentioned or in_thread):
            return
        if in_thread and not (is_dm or mentioned):
            if addressed_to_someone_else(text, context.bot_user_id):
                return
            if self.feedback.is_answer_thread(channel, thread_ts) is False:
                return  # None: the database cannot tell now; the reply waits in the spool (``_handle``)
        key = event_key(body)
        if not self._first_delivery(key, event):
            return
        try:
            self._handle(body, event, context, mentioned=mentioned, in_thread=in_thread, is_dm=is_dm)
        finally:
            if key:
                self.ctx.leases.finish(key)

    def _handle(
        self,
        body: dict[str, Any],
        event: dict[str, Any],
        context: BoltContext,
        *,
        mentioned: bool,
        in_thread: bool,
        is_dm: bool,
    ) -> None:
        """The delivery is this process's to handle: a question, a correction, or a polite refusal."""
        channel, user, ts = event["channel"], event["user"], event["ts"]
        text = event.get("text") or ""
        thread_ts = event.get("thread_ts")
        # Only the delivery that won the claim looks the channel up (app_mention has no channel_type).
        origin = self.ctx.channels.origin(channel, event.get("channel_type"))
        settings = self.ctx.settings
        if origin is ChannelKind.direct_message and not settings.answer_direct_messages:
            self.ctx.ephemeral(channel=channel, user=user, text=DM_OFF)
            return
        if origin is ChannelKind.private_channel and not settings.answer_private_channels:
            if mentioned:
                self.ctx.ephemeral(channel=channel, user=user, text=PRIVATE_OFF, thread_ts=thread_ts)
            return
        cleaned = clean_question(text, context.bot_user_id)
        took: bool | None = False
        if in_thread and not mentioned:
            took = self.feedback.take_thread_reply(
                channel, thread_ts, user, cleaned, key=f"correction:thread:{channel}:{ts}"
            )
            if took:
                return
        question = Question(
            text=cleaned,
            user=user,
            channel=channel,
            ts=ts,
            thread_ts=thread_ts or ts,
            origin=origin,
            team=event.get("team") or context.team_id,
            event_id=body.get("event_id") if isinstance(body.get("event_id"), str) else None,
            may_be_correction=took is None,
        )
        if question.may_be_correction:
            self.answerer.defer(question)  # a correction or a question: told apart when the database is back
            return
        self.answerer.handle(question)

    def _first_delivery(self, key: str | None, event: dict[str, Any]) -> bool:
        """Claim the delivery (leased: a retry after a crash is handled again, ``bot.slack.leases``)."""
        if not key:
            return True
        try:
            won = self.ctx.leases.take(key, event.get("type", "")) is not None
        except Exception as exc:
            # The answer's own claim fails the same way, and spools the question or apologises.
            log.warning("could not claim %s: %s", key, exc)
            return True
        if not won:
            DUPLICATES.labels(kind="event").inc()
        return won


def register(app: App, router: MessageRouter) -> None:
    def acknowledge(ack: Ack) -> None:
        ack()

    # Lazy listeners run on pool threads: each binds its event's log context itself.
    def answer_mention(body: dict[str, Any], event: dict[str, Any], context: BoltContext) -> None:
        with log_context(event_id=body.get("event_id"), channel=event.get("channel")):
            router.on_mention(body, event, context)

    def handle_message(body: dict[str, Any], event: dict[str, Any], context: BoltContext) -> None:
        with log_context(event_id=body.get("event_id"), channel=event.get("channel")):
            router.on_message(body, event, context)

    def may_need_tanya(event: dict[str, Any], context: BoltContext) -> bool:
        return worth_a_look(event, context.bot_user_id)

    app.event("app_mention")(ack=acknowledge, lazy=[answer_mention])
    app.event("message", matchers=[may_need_tanya])(ack=acknowledge, lazy=[handle_message])
