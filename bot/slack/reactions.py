"""👍/👎 reactions on tanya's answers become votes; every other reaction is ignored.

Only reactions on a message that is a recorded answer count (``find_by_slack_message``), whatever the
emoji's skin tone. A person's vote is the newer of their 👍 and 👎 still on the message, decided by each
event's ``event_ts`` rather than by the order the events finish on the listener pool
(``storage.reactions``): an event older than one already applied changes nothing. If the database is
unavailable, the event (with its ``event_ts``) is spooled (``bot.outbox``) and applied when it is back,
through the same ordering, and the person is told it will be saved then; any other failure is told as such.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from slack_bolt import Ack, App, BoltContext

from bot.observability.logs import log_context
from bot.slack.context import SlackContext
from bot.slack.feedback import Feedback
from bot.slack.once import claimed, event_key, in_progress_key, interaction_key
from bot.slack.text import vote_from_reaction
from storage.database import is_unavailable
from storage.reactions import slack_ts_micros

log = logging.getLogger(__name__)

# An answer is recorded when it is complete, but people react while it is still streaming. A reaction
# on a message marked in progress (in SQL, so any replica sees it) therefore waits in its lazy listener
# for the answer's row rather than being dropped; answers on the bundled CPU model finish well within this.
ANSWER_WAIT_SECONDS = 180.0
ANSWER_POLL_SECONDS = 0.5


class ReactionVotes:
    """The ``reaction_added``/``reaction_removed`` listener: a 👍 or 👎 on an answer becomes the person's vote.

    Events are applied by ``event_ts`` (``Feedback.react``), and a reaction on an answer still streaming
    waits for its row.
    """

    def __init__(self, ctx: SlackContext, feedback: Feedback) -> None:
        self.ctx = ctx
        self.feedback = feedback
        ctx.service.outbox.register("reaction", self.apply_spooled)

    def on_reaction(self, body: dict[str, Any], event: dict[str, Any], context: BoltContext) -> None:
        reaction = event.get("reaction")
        up = vote_from_reaction(reaction) if isinstance(reaction, str) else None
        item = event.get("item")
        user = event.get("user")
        if not isinstance(item, dict) or not isinstance(user, str):
            if up is not None:
                log.warning("ignored a %s without a message item or a user", event.get("type"))
            return
        if up is None or item.get("type") != "message" or not user or user == context.bot_user_id:
            return
        item_user = event.get("item_user")
        if item_user and context.bot_user_id and item_user != context.bot_user_id:
            return  # on someone else's message: no database work at all
        channel, ts = item.get("channel"), item.get("ts")
        if not isinstance(channel, str) or not isinstance(ts, str) or not channel or not ts:
            return
        added = event.get("type") == "reaction_added"
        work = {
            "channel": channel,
            "ts": ts,
            "user": user,
            "up": up,
            "added": added,
            "event_us": event_time(body, event),
            "key": event_key(body) or f"reaction:{channel}:{ts}:{user}:{event_time(body, event)}:{int(up)}",
        }
        try:
            taken = self.ctx.leases.take(work["key"], event.get("type", ""))
            if taken is None:
                return  # a duplicate delivery, handled elsewhere
            answer = self.feedback.answer_for_message(channel, ts)
            if answer is None and claimed(self.ctx.database, in_progress_key(channel, ts)):
                answer = self._wait_for_answer(channel, ts)
            if answer is None and self.ctx.service.outbox.waiting(interaction_key(channel, ts)):
                self._spool(work)  # the answer itself waits in the spool: the vote goes in behind it
                return
            if answer is None:
                self.ctx.leases.finish(work["key"])
                return
            result = self.feedback.react(
                answer.interaction_id, user=user, up=up, added=added, event_us=work["event_us"]
            )
            self.ctx.leases.finish(work["key"])
        except Exception as exc:
            if is_unavailable(exc):
                self._spool(work)
                if added:
                    self.ctx.ephemeral(channel=channel, user=user, text=self.feedback.saved_later(up))
                return
            log.exception(
                "could not record a %s reaction by %s on %s/%s", event.get("reaction"), user, channel, ts
            )
            if added:
                self.ctx.ephemeral(channel=channel, user=user, text=self.feedback.not_recorded(up))
            return
        if not result.applied:
            log.info(
                "ignored a %s by %s on %s/%s: a newer reaction event was applied first",
                event.get("type"),
                user,
                channel,
                ts,
            )
        elif added:
            self.ctx.ephemeral(
                channel=channel, user=user, text=self.feedback.thanks(up), thread_ts=answer.thread_ts
            )

    def _spool(self, work: dict[str, Any]) -> None:
        """Keep the event on disk; applied in ``event_ts`` order by ``apply_spooled`` when the database is back."""
        self.ctx.service.outbox.put(str(work["key"]), "reaction", work)

    def apply_spooled(self, work: dict[str, Any]) -> None:
        """Spool applier. Idempotent without a claim: an event already applied is older than or as old as
        what its row holds, so applying it again changes nothing (``storage.reactions``)."""
        answer = self.feedback.answer_for_message(str(work["channel"]), str(work["ts"]))
        if answer is None:
            log.info(
                "spooled reaction on %s/%s: that message is not a saved answer", work["channel"], work["ts"]
            )
        else:
            self.feedback.react(
                answer.interaction_id,
                user=str(work["user"]),
                up=bool(work["up"]),
                added=bool(work["added"]),
                event_us=int(work["event_us"]),
            )
        self.ctx.leases.finish(str(work["key"]))

    def _wait_for_answer(self, channel: str, ts: str) -> Any:
        """Poll until the answer being written in this message is recorded, or give up at the deadline."""
        deadline = time.monotonic() + ANSWER_WAIT_SECONDS
        pause = threading.Event()
        while time.monotonic() < deadline:
            pause.wait(ANSWER_POLL_SECONDS)
            answer = self.feedback.answer_for_message(channel, ts)
            if answer is not None:
                return answer
            if self.ctx.service.outbox.waiting(interaction_key(channel, ts)):
                return None  # it was written while the database was away: saved later, from the spool
        log.info("reaction on %s/%s: no answer was recorded for that message", channel, ts)
        return None


def event_time(body: dict[str, Any], event: dict[str, Any]) -> int:
    """When Slack says the reaction happened, in microseconds: ``event_ts``, else the delivery's
    ``event_time``, else now (an event without either can only be ordered by its arrival)."""
    exact = slack_ts_micros(event.get("event_ts"))
    if exact is not None:
        return exact
    seconds = body.get("event_time")
    if isinstance(seconds, int) and not isinstance(seconds, bool) and seconds > 0:
        return seconds * 1_000_000
    return time.time_ns() // 1000


def register(app: App, votes: ReactionVotes) -> None:
    def acknowledge(ack: Ack) -> None:
        ack()

    def record_reaction(body: dict[str, Any], event: dict[str, Any], context: BoltContext) -> None:
        item = event.get("item")
        channel = item.get("channel") if isinstance(item, dict) else None
        with log_context(event_id=body.get("event_id"), channel=channel):
            votes.on_reaction(body, event, context)

    app.event("reaction_added")(ack=acknowledge, lazy=[record_reaction])
    app.event("reaction_removed")(ack=acknowledge, lazy=[record_reaction])
