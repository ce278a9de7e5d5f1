"""Votes and corrections.

A person has one opinion of an answer at a time: voting again changes the row, withdrawing deletes it.
The unique key (interaction, user) enforces that even when two deliveries of the same reaction race.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.models import Correction, Interaction, Vote, utcnow

UP = 1
DOWN = -1


class UnknownInteractionError(LookupError):
    """Feedback for an answer that does not exist (a typo in an id, or a deleted row)."""


def _require_interaction(session: Session, interaction_id: int) -> None:
    if session.get(Interaction, interaction_id) is None:
        raise UnknownInteractionError(f"there is no answer with id {interaction_id}")


def set_vote(session: Session, *, interaction_id: int, user_id: str, value: int, source: str) -> Vote:
    """Create or change this user's vote; never a second row."""
    if value not in (UP, DOWN):
        raise ValueError(f"a vote is +1 or -1, not {value!r}")
    _require_interaction(session, interaction_id)
    query = select(Vote).where(Vote.interaction_id == interaction_id, Vote.user_id == user_id)
    vote = session.scalars(query.with_for_update()).first()
    if vote is None:
        vote = Vote(interaction_id=interaction_id, user_id=user_id, value=value, source=source)
        try:
            with session.begin_nested():
                session.add(vote)
        except IntegrityError:
            # Another delivery inserted it first: fall through and update that row.
            vote = session.scalars(query.with_for_update()).one()
    if vote.value != value or vote.source != source:
        vote.value = value
        vote.source = source
        vote.updated_at = utcnow()
    session.flush()
    return vote


def withdraw_vote(session: Session, *, interaction_id: int, user_id: str, value: int | None = None) -> bool:
    """Delete the user's vote; with ``value``, only if it still has that value.

    Removing 👍 after switching to 👎 must not delete the 👎, hence the optional value check.
    """
    statement = delete(Vote).where(Vote.interaction_id == interaction_id, Vote.user_id == user_id)
    if value is not None:
        statement = statement.where(Vote.value == value)
    return bool(session.execute(statement).rowcount)


def get_vote(session: Session, *, interaction_id: int, user_id: str) -> Vote | None:
    return session.scalars(
        select(Vote).where(Vote.interaction_id == interaction_id, Vote.user_id == user_id)
    ).first()


def add_correction(
    session: Session, *, interaction_id: int, user_id: str, text: str, source: str
) -> Correction:
    text = text.strip()
    if not text:
        raise ValueError("a correction needs some text")
    _require_interaction(session, interaction_id)
    correction = Correction(interaction_id=interaction_id, user_id=user_id, text=text, source=source)
    session.add(correction)
    session.flush()
    return correction
