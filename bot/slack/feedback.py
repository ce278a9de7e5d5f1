"""Votes and corrections from Slack, whichever way they arrive (reaction, button, thread reply, modal).

One person has one vote per answer: 👍 then 👎 changes it, removing a stale 👍 after switching to 👎 keeps
the 👎 (``Tanya.unrate(up=…)`` only deletes a vote that still has that value). A vote that cannot be
stored is never dropped silently: the caller gets ``False`` and tells the person.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.observability import metrics
from bot.slack.context import SlackContext
from storage import Interaction
from storage.feedback import get_vote
from storage.interactions import find_by_slack_message, get_interaction, thread_interactions
from storage.reactions import ReactionResult, apply_reaction

log = logging.getLogger(__name__)


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

    def is_answer_thread(self, channel: str, thread_ts: str) -> bool:
        with self.ctx.database.session() as session:
            return bool(thread_interactions(session, channel, thread_ts))

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
    def correction_thanks(answer: AnswerRef) -> str:
        return (
            f"Thank you — your correction to answer #{answer.interaction_id} is saved. "
            "tanya will learn from it the next time it is re-trained."
        )
