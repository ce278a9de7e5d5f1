"""Exactly-once handling of Slack deliveries, backed by SQL rather than process memory.

Slack retries an event it thinks went unanswered (``X-Slack-Retry-Num``), Socket Mode may hand the same
envelope to two connections at once, and several bot replicas may each receive a copy. A unique row in
``processed_events`` decides which of them does the work; every other copy is acknowledged and dropped.
"""

from __future__ import annotations

from bot.observability.metrics import DUPLICATES
from storage import Database
from storage.events import claim_event, is_claimed


def claim(database: Database, key: str, kind: str = "") -> bool:
    """True for the first claimant of ``key`` in any process; the claim is committed before returning.

    A lost claim is a duplicate stopped here; it is counted by the key's prefix (``event``, ``answer``,
    ``job``…), a fixed set, so the metric shows which kind of duplicate is arriving.
    """
    with database.session() as session:
        won = claim_event(session, key[:128], kind[:64])
    if not won:
        DUPLICATES.labels(kind=key.partition(":")[0]).inc()
    return won


def claimed(database: Database, key: str) -> bool:
    with database.session() as session:
        return is_claimed(session, key[:128])


def event_key(body: dict) -> str | None:
    """The delivery's ``event_id`` (the same on every retry of one event), if it has one."""
    event_id = body.get("event_id")
    return f"event:{event_id}" if event_id else None


def message_key(channel: str, ts: str) -> str:
    """One answer per Slack message, even when it arrives both as ``app_mention`` and as ``message``."""
    return f"answer:{channel}:{ts}"


def job_status_key(job_id: int, status: str) -> str:
    """One notice per training-job status change, however many bot processes watch the queue."""
    return f"job:{job_id}:{status}"


def in_progress_key(channel: str, placeholder_ts: str) -> str:
    """Marks a message of tanya's that is still becoming an answer, so early reactions wait for it."""
    return f"writing:{channel}:{placeholder_ts}"


def interaction_key(channel: str, message_ts: str) -> str:
    """The spool key of an answer saved late (``bot.service``): votes on it wait behind it."""
    return f"interaction:{channel}:{message_ts}"
