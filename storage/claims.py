"""Leased claims: exactly-once work that a crash cannot orphan.

A final claim (``storage.events.claim_event``) is right for work done in one step, but an answer takes
seconds to minutes: if the process dies in the middle, a final claim makes every later delivery of the
question a "duplicate", and nobody ever answers it. A leased claim names its ``owner`` and holds only
until ``lease_until``; the owner renews the lease while it works and marks the claim finished when the
work is done. A claim that is unfinished and past its lease was left by a process that died (or lost
the database longer than its lease): anyone may take it over, by one conditional ``UPDATE``, so of
several replicas trying at once exactly one wins. A finished claim is never taken again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.models import ProcessedEvent, utcnow


@dataclass(frozen=True)
class TakenClaim:
    """A claim this owner now holds; ``resumed`` when it was taken over from an owner that died, in
    which case ``payload`` is what that owner left (e.g. the placeholder message it had posted)."""

    key: str
    resumed: bool
    payload: dict[str, Any]


def take_claim(
    session: Session,
    key: str,
    *,
    kind: str,
    owner: str,
    lease_until: datetime,
    payload: dict[str, Any] | None = None,
) -> TakenClaim | None:
    """The claim on ``key`` for ``owner``, new or taken over; None while someone else holds it or it is done.

    Commit the session before doing the work, so that other claimants see it.
    """
    row = session.get(ProcessedEvent, key)
    if row is None:
        try:
            with session.begin_nested():
                session.add(
                    ProcessedEvent(
                        event_id=key, kind=kind, owner=owner, lease_until=lease_until, payload=payload or {}
                    )
                )
            return TakenClaim(key=key, resumed=False, payload=payload or {})
        except IntegrityError:
            row = session.get(ProcessedEvent, key)
            if row is None:
                return None
    return take_over(session, key, owner=owner, lease_until=lease_until)


def take_over(session: Session, key: str, *, owner: str, lease_until: datetime) -> TakenClaim | None:
    """Take an unfinished claim whose lease ran out; None if it is finished, held, or taken by another."""
    result = session.execute(
        update(ProcessedEvent)
        .where(
            ProcessedEvent.event_id == key,
            ProcessedEvent.finished_at.is_(None),
            ProcessedEvent.lease_until.is_not(None),
            ProcessedEvent.lease_until < utcnow(),
        )
        .values(owner=owner, lease_until=lease_until)
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:
        return None
    payload = session.scalar(select(ProcessedEvent.payload).where(ProcessedEvent.event_id == key))
    return TakenClaim(key=key, resumed=True, payload=dict(payload or {}))


def renew_claims(session: Session, keys: Iterable[str], *, owner: str, lease_until: datetime) -> set[str]:
    """Extend this owner's unfinished claims on ``keys``; returns the keys it still holds."""
    keys = list(keys)
    if not keys:
        return set()
    session.execute(
        update(ProcessedEvent)
        .where(
            ProcessedEvent.event_id.in_(keys),
            ProcessedEvent.owner == owner,
            ProcessedEvent.finished_at.is_(None),
        )
        .values(lease_until=lease_until)
        .execution_options(synchronize_session=False)
    )
    held = select(ProcessedEvent.event_id).where(
        ProcessedEvent.event_id.in_(keys),
        ProcessedEvent.owner == owner,
        ProcessedEvent.finished_at.is_(None),
    )
    return set(session.scalars(held))


def update_payload(session: Session, key: str, *, owner: str, payload: dict[str, Any]) -> bool:
    """Record what a successor needs to resume (merged into the payload); False if no longer held."""
    row = session.get(ProcessedEvent, key, with_for_update=True)
    if row is None or row.owner != owner or row.finished_at is not None:
        return False
    row.payload = {**(row.payload or {}), **payload}
    session.flush()
    return True


def finish_claim(session: Session, key: str) -> bool:
    """Mark the work done, whoever holds the claim now: it is never taken again. False if unknown."""
    result = session.execute(
        update(ProcessedEvent)
        .where(ProcessedEvent.event_id == key, ProcessedEvent.finished_at.is_(None))
        .values(finished_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount) or session.get(ProcessedEvent, key) is not None


def orphaned_claims(session: Session, kind: str, *, limit: int = 20) -> list[str]:
    """Keys of unfinished claims of ``kind`` whose lease ran out, oldest first."""
    query = (
        select(ProcessedEvent.event_id)
        .where(
            ProcessedEvent.kind == kind,
            ProcessedEvent.finished_at.is_(None),
            ProcessedEvent.lease_until.is_not(None),
            ProcessedEvent.lease_until < utcnow(),
        )
        .order_by(ProcessedEvent.received_at)
        .limit(limit)
    )
    return list(session.scalars(query))
