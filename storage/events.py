"""Exactly-once handling of Slack deliveries, guarded by a primary key instead of process memory.

``claim_event`` takes a final claim: done as soon as it is taken (a notice posted once, a delivery
whose work is a single transaction). Work a crash can interrupt takes a leased claim (``storage.claims``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.models import ProcessedEvent, utcnow


def claim_event(session: Session, event_id: str, kind: str = "") -> bool:
    """True for the first caller with this id, in any process; False for every duplicate.

    Commit the session before doing the work so a concurrent duplicate sees the claim. A retry of a
    claim committed earlier (the common duplicate: Slack retrying, a second replica) is answered by a
    read, without waiting for SQLite's single writer; only simultaneous first claims race on the insert.
    """
    if is_claimed(session, event_id):
        return False
    try:
        with session.begin_nested():
            session.add(ProcessedEvent(event_id=event_id, kind=kind, finished_at=utcnow()))
    except IntegrityError:
        return False
    return True


def is_claimed(session: Session, event_id: str) -> bool:
    return session.get(ProcessedEvent, event_id) is not None


def forget_events_before(session: Session, cutoff: datetime | None = None) -> int:
    """Slack stops retrying after about an hour; older claims only take space."""
    cutoff = cutoff or utcnow() - timedelta(days=2)
    return int(session.execute(delete(ProcessedEvent).where(ProcessedEvent.received_at < cutoff)).rowcount)
