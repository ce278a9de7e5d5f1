"""Votes and corrections from Slack, whichever way they arrive (reaction, button, thread reply, modal).

One person has one vote per answer: 👍 then 👎 changes it, removing a stale 👍 after switching to 👎 keeps
the 👎 (``Tanya.unrate(up=…)`` only deletes a vote that still has that value). A vote or correction
that cannot be stored because the database is unavailable is kept in the local spool (``bot.outbox``)
and applied when it is back (``*_or_keep`` return False, and the person is told so); any other failure
is told as such. Nothing is dropped silently.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.observability import metrics
from bot.slack.context import SlackContext
from storage import Interaction
from storage.database import is_unavailable
from storage.feedback import get_vote
from storage.interactions import find_by_slack_message, get_interaction, thread_interactions
from storage.reactions import ReactionResult, apply_reaction

log = logging.getLogger(__name__)

CORRECTION_FAILED = (
    "Sorry — I could not save your correction just now because of a problem on my side. "
    "Please try again in a few minutes."
)


@dataclass(frozen=True)
class AnswerRef:
    """Where an answer lives, enough to thank someone in its thread."""

    interaction_id: int
    channel: str | None
    thread_ts: str | None
    question: str


def _ref(interaction: Interaction) -> AnswerRef:
    return AnswerRef(interaction.id, interaction.channel_id, interaction.thread_ts, interaction.question)


class Feedback:
    """Votes and corrections from Slack, recorded through the service, and what people are told about them.

    Shared by the reaction, button, thread-reply and modal handlers, so each way of voting counts the same.
    """

    def __init__(self, ctx: SlackContext) -> None:
        self.ctx = ctx
        ctx.service.outbox.register("vote", self._apply_vote)
        ctx.service.outbox.register("correction", self._apply_correction)

    def answer_for_message(self, channel: str, ts: str) -> AnswerRef | None:
        """The answer a reaction is on, or None when the message is not one of tanya's answers."""
        with self.ctx.database.session() as session:
            interaction = find_by_slack_message(session, channel, ts)
            return _ref(interaction) if interaction else None

    def answer_by_id(self, interaction_id: int) -> AnswerRef | None:
        with self.ctx.database.session() as session:
            interaction = get_interaction(session, interaction_id)
            return _ref(interaction) if interaction else None

    def vote(self, interaction_id: int, *, user: str, up: bool, source: str) -> None:
        self.ctx.service.rate(interaction_id, user_id=user, up=up, source=source)

    def withdraw(self, interaction_id: int, *, user: str, up: bool) -> bool:
        return self.ctx.service.unrate(interaction_id, user_id=user, up=up)

    def react(
        self, interaction_id: int, *, user: str, up: bool, added: bool, event_us: int
    ) -> ReactionResult:
        """A reaction event, applied only if newer than the last one for that emoji (``storage.reactions``)."""
        with self.ctx.database.session() as session:
            result = apply_reaction(
                session, interaction_id=interaction_id, user_id=user, up=up, added=added, event_us=event_us
            )
        if not result.applied:
            metrics.STALE_REACTIONS.inc()
        elif result.changed and result.vote is None:
            metrics.VOTES_WITHDRAWN.inc()
        elif result.changed:
            metrics.VOTES.labels(direction="up" if result.vote == 1 else "down", source="reaction").inc()
        return result

    def correct(self, interaction_id: int, *, user: str, text: str, source: str) -> int:
        return self.ctx.service.correct(interaction_id, user_id=user, text=text, source=source)

    def vote_or_keep(self, interaction_id: int, *, user: str, up: bool, source: str, key: str) -> bool:
        """Record the vote now (True), or keep it for when the database is back (False); else raise."""
        work = {"interaction_id": interaction_id, "user": user, "up": up, "source": source}
        return self._now_or_keep(
            "vote", key, work, lambda: self.vote(interaction_id, user=user, up=up, source=source)
        )

    def correct_or_keep(self, interaction_id: int, *, user: str, text: str, source: str, key: str) -> bool:
        """Store the correction now (True), or keep it for when the database is back (False); else raise."""
        work = {"interaction_id": interaction_id, "user": user, "text": text, "source": source}
        return self._now_or_keep(
            "correction", key, work, lambda: self.correct(interaction_id, user=user, text=text, source=source)
        )

    def _now_or_keep(self, kind: str, key: str, work: dict[str, Any], apply: Callable[[], object]) -> bool:
        try:
            apply()
            return True
        except Exception as exc:
            if not is_unavailable(exc):
                raise
        self.ctx.service.outbox.put(key, kind, work)
        return False

    def _apply_vote(self, work: dict[str, Any]) -> None:
        """Spool applier; setting a person's vote twice leaves one vote, so a replay is harmless."""
        self.vote(
            int(work["interaction_id"]), user=str(work["user"]), up=bool(work["up"]), source=work["source"]
        )

    def _apply_correction(self, work: dict[str, Any]) -> None:
        """Spool applier; the same text from the same person is not stored twice (a replay after a crash)."""
        interaction_id, user, text = int(work["interaction_id"]), str(work["user"]), str(work["text"])
        with self.ctx.database.session() as session:
            interaction = get_interaction(session, interaction_id)
            if interaction is None:
                log.warning("a kept correction for #%s: that answer no longer exists", interaction_id)
                return
            if any(c.user_id == user and c.text == text for c in interaction.corrections):
                return
        self.correct(interaction_id, user=user, text=text, source=str(work["source"]))

    def pending_correction(self, channel: str, thread_ts: str, user: str) -> AnswerRef | None:
        """The newest answer in this thread that ``user`` voted 👎 and has not corrected since.

        A thread reply from that person (without an @mention) is then their better answer.
        """
        with self.ctx.database.session() as session:
            for interaction in reversed(thread_interactions(session, channel, thread_ts)):
                vote = get_vote(session, interaction_id=interaction.id, user_id=user)
                if vote is None or vote.value != -1:
                    continue
                corrected = any(
                    correction.user_id == user and correction.created_at >= vote.updated_at
                    for correction in interaction.corrections
                )
                if not corrected:
                    return _ref(interaction)
        return None

    def take_thread_reply(
        self, channel: str, thread_ts: str, user: str, text: str, *, key: str, deferred: bool = False
    ) -> bool | None:
        """Store a thread reply as the correction ``user`` owes here (they voted 👎); True if it was one.

        None when that cannot be known because the database is unavailable: the reply then waits in the
        spool as a question that may be a correction (``Question.may_be_correction``), and this is asked
        again when it is back — with ``deferred``, which raises instead, so the reply stays in the spool.
        The person is told once it is saved: while the database is away, tanya cannot even tell whether
        the thread is one of its answers, and a note on every reply in a stranger's thread would be noise.
        """
        if not text:
            return False
        try:
            pending = self.pending_correction(channel, thread_ts, user)
        except Exception as exc:
            if deferred:
                raise
            if is_unavailable(exc):
                return None
            # Unknown whether this was a correction; answering it fails the same way and apologises.
            log.exception("could not look for a pending correction in %s/%s", channel, thread_ts)
            return False
        if pending is None:
            return False
        try:
            saved = self.correct_or_keep(
                pending.interaction_id, user=user, text=text, source="slack_thread", key=key
            )
        except Exception:
            log.exception("could not store a correction in %s/%s", channel, thread_ts)
            self.ctx.ephemeral(channel=channel, user=user, text=CORRECTION_FAILED, thread_ts=thread_ts)
            return True
        note = self.correction_thanks(pending) if saved else self.correction_saved_later()
        self.ctx.ephemeral(channel=channel, user=user, text=note, thread_ts=thread_ts)
        return True

    def is_answer_thread(self, channel: str, thread_ts: str, *, deferred: bool = False) -> bool | None:
        """Whether tanya answered in this thread; None when the database is unavailable to say.

        With ``deferred`` (the spool applying a reply later) that error is raised instead.
        """
        try:
            with self.ctx.database.session() as session:
                return bool(thread_interactions(session, channel, thread_ts))
        except Exception as exc:
            if deferred or not is_unavailable(exc):
                raise
            return None

    # -- what people are told ---------------------------------------------------------------------

    @staticmethod
    def thanks(up: bool) -> str:
        if up:
            return "Thanks for the 👍 — noted. It helps tanya learn what good answers look like."
        return (
            "Thanks for the 👎 — noted. If you know the right answer, reply in this thread with it "
            "(no need to mention me) or press *✏️ Suggest a better answer*; tanya learns from corrections."
        )

    @staticmethod
    def not_recorded(up: bool | None) -> str:
        what = "vote" if up is None else ("👍" if up else "👎")
        return (
            f"Sorry — I could not record your {what} just now because of a problem on my side. "
            "Please try again in a few minutes."
        )

    @staticmethod
    def saved_later(up: bool) -> str:
        what = "👍" if up else "👎"
        return (
            f"Thanks for the {what}. My database is unavailable just now: your vote is kept safe and will be "
            "saved as soon as it is back."
        )

    @staticmethod
    def correction_saved_later() -> str:
        """For a correction known to be one (the person's 👎 was read) whose saving must wait."""
        return (
            "Thank you for the better answer. My database is unavailable just now: it is kept safe and will "
            "be saved as soon as it is back."
        )

    @staticmethod
    def correction_thanks(answer: AnswerRef) -> str:
        return (
            f"Thank you — your correction to answer #{answer.interaction_id} is saved. "
            "tanya will learn from it the next time it is re-trained."
        )
