"""Questions whose answer could not be posted to Slack: recorded, not lost."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import UndeliveredAnswer


def record_undelivered(
    session: Session,
    *,
    channel_id: str,
    question_ts: str,
    stage: str,
    error: str,
    event_id: str | None = None,
    thread_ts: str | None = None,
    user_id: str | None = None,
    interaction_id: int | None = None,
) -> UndeliveredAnswer:
    row = UndeliveredAnswer(
        channel_id=channel_id[:64],
        question_ts=question_ts[:32],
        stage=stage[:32],
        error=error,
        event_id=event_id[:128] if event_id else None,
        thread_ts=thread_ts[:32] if thread_ts else None,
        user_id=user_id[:64] if user_id else None,
        interaction_id=interaction_id,
    )
    session.add(row)
    session.flush()
    return row


def undelivered(session: Session, limit: int = 100) -> list[UndeliveredAnswer]:
    """The most recent first."""
    query = select(UndeliveredAnswer).order_by(UndeliveredAnswer.id.desc()).limit(limit)
    return list(session.scalars(query))
