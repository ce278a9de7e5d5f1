"""Votes from reactions, applied in the order Slack's ``event_ts`` gives them, not the order they arrive.

Several reaction events of one person are often in flight at once (a 👍 then a quick switch to 👎), and
the bot handles them on a pool of threads, so they finish in any order. Each person and answer has one
``VoteReaction`` row holding, for 👍 and for 👎, the ``event_ts`` of the newest event applied and whether
that reaction is still on the message. An event is applied only if it is newer than what the row holds,
by a conditional ``UPDATE`` on that single row: the row lock (PostgreSQL) or the write lock (SQLite)
orders concurrent events, and a late, older event changes nothing. The vote is then derived from the row
in the same transaction — the newer of the reactions still present, or none — so it always matches the
reactions Slack shows on the message, whatever order the events came in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.feedback import DOWN, UP, get_vote, set_vote, withdraw_vote
from storage.models import VoteReaction, utcnow

_SLACK_TS = re.compile(r"([0-9]{1,12})(?:\.([0-9]{1,6}))?")


@dataclass(frozen=True)
class ReactionResult:
    """What one reaction event did: ``applied`` is False for an event older than one already applied."""

    applied: bool
    vote: int | None  # the person's vote afterwards: UP, DOWN or None
    changed: bool  # whether the stored vote changed


def slack_ts_micros(ts: str | float | int | None) -> int | None:
    """A Slack timestamp (``"1700000001.000002"``) as integer microseconds, exact; None if it is not one.

    Floats cannot hold 16 significant digits exactly, so the two parts are read as integers.
    """
    if ts is None or isinstance(ts, bool):
        return None
    match = _SLACK_TS.fullmatch(str(ts).strip())
    if match is None:
        return None
    seconds, fraction = match.groups()
    return int(seconds) * 1_000_000 + int((fraction or "").ljust(6, "0"))


def _insert(session: Session) -> type[Insert]:
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert  # type: ignore[return-value]
    if name == "sqlite":
        return sqlite.insert  # type: ignore[return-value]
    raise NotImplementedError(f"reaction votes need PostgreSQL or SQLite, not {name}")


def derived_vote(row: VoteReaction) -> int | None:
    """The newer of the reactions still present on the message, or None when neither is."""
    present = []
    if row.up_present and row.up_event_us is not None:
        present.append((row.up_event_us, UP))
    if row.down_present and row.down_event_us is not None:
        present.append((row.down_event_us, DOWN))
    return max(present)[1] if present else None


def apply_reaction(
    session: Session, *, interaction_id: int, user_id: str, up: bool, added: bool, event_us: int
) -> ReactionResult:
    """Apply one ``reaction_added``/``reaction_removed`` event unless a newer one for that emoji is in.

    The first statement writes, so on SQLite the transaction holds the write lock from its start and
    never reads a snapshot that a concurrent writer has made stale.
    """
    insert = _insert(session)
    key = (VoteReaction.interaction_id == interaction_id, VoteReaction.user_id == user_id)
    session.execute(
        insert(VoteReaction)
        .values(
            interaction_id=interaction_id,
            user_id=user_id,
            up_present=False,
            down_present=False,
            updated_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["interaction_id", "user_id"])
    )
    at, present = (
        (VoteReaction.up_event_us, VoteReaction.up_present)
        if up
        else (VoteReaction.down_event_us, VoteReaction.down_present)
    )
    result = session.execute(
        update(VoteReaction)
        .where(*key, or_(at.is_(None), at < event_us))
        .values({at: event_us, present: added, VoteReaction.updated_at: utcnow()})
        .execution_options(synchronize_session=False)
    )
    row = session.scalars(select(VoteReaction).where(*key).execution_options(populate_existing=True)).one()
    vote = derived_vote(row)
    if not result.rowcount:
        return ReactionResult(applied=False, vote=vote, changed=False)
    if vote is None:
        changed = withdraw_vote(session, interaction_id=interaction_id, user_id=user_id)
    else:
        existing = get_vote(session, interaction_id=interaction_id, user_id=user_id)
        changed = existing is None or existing.value != vote
        set_vote(session, interaction_id=interaction_id, user_id=user_id, value=vote, source="reaction")
    return ReactionResult(applied=True, vote=vote, changed=changed)
