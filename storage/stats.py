"""Counts for ``tanya status``, the Slack ``/tanya stats`` command and the App Home."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import AdapterStatus, AdapterVersion, Correction, Interaction, TrainingJob, Vote, utcnow


@dataclass(frozen=True)
class Counts:
    """The numbers ``tanya status`` and the App Home show."""

    interactions: int
    votes_up: int
    votes_down: int
    corrections: int
    training_jobs: int
    active_adapter: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def active_adapter(session: Session) -> AdapterVersion | None:
    return session.scalars(
        select(AdapterVersion)
        .where(AdapterVersion.status == AdapterStatus.active)
        .order_by(AdapterVersion.activated_at.desc())
    ).first()


def counts(session: Session) -> Counts:
    def scalar(statement: Any) -> int:
        return int(session.scalar(statement) or 0)

    adapter = active_adapter(session)
    return Counts(
        interactions=scalar(select(func.count()).select_from(Interaction)),
        votes_up=scalar(select(func.count()).select_from(Vote).where(Vote.value == 1)),
        votes_down=scalar(select(func.count()).select_from(Vote).where(Vote.value == -1)),
        corrections=scalar(select(func.count()).select_from(Correction)),
        training_jobs=scalar(select(func.count()).select_from(TrainingJob)),
        active_adapter=adapter.name if adapter else None,
    )


def daily_votes(
    session: Session, *, days: int = 14, now: datetime | None = None
) -> list[tuple[str, int, int]]:
    """(day, 👍, 👎) for the last ``days`` days, oldest first, zero-filled: a chart needs every day."""
    end = (now or utcnow()).date()
    start = end - timedelta(days=days - 1)
    rows = session.execute(
        select(Vote.updated_at, Vote.value).where(Vote.updated_at >= utcnow() - timedelta(days=days))
    )
    buckets = {(start + timedelta(days=i)).isoformat(): [0, 0] for i in range(days)}
    for updated_at, value in rows:
        key = updated_at.date().isoformat()
        if key in buckets:
            buckets[key][0 if value > 0 else 1] += 1
    return [(day, up, down) for day, (up, down) in buckets.items()]


def recent_downvoted(session: Session, limit: int = 5) -> list[Interaction]:
    """Questions people disliked the answer to, newest first: what an admin should look at."""
    return list(
        session.scalars(
            select(Interaction)
            .join(Vote)
            .where(Vote.value == -1)
            .group_by(Interaction.id)
            .order_by(func.max(Vote.updated_at).desc())
            .limit(limit)
        )
    )
