"""The tables behind tanya's feedback loop.

Every answer becomes an ``Interaction`` that keeps exactly what the model saw (the rendered prompt and
the retrieved document ids and scores), because the training data is rebuilt from those rows later:
an answer can only be learned from if its context can be replayed.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Enum,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """The declarative base of every table."""

    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}  # noqa: RUF012


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware on PostgreSQL; SQLite returns naive values, which are UTC by construction."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("tanya stores timezone-aware datetimes only")
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class ChannelKind(enum.StrEnum):
    """Where a question came from; decides whether it may be used for training."""

    cli = "cli"
    public_channel = "public_channel"
    private_channel = "private_channel"
    direct_message = "direct_message"


class JobStatus(enum.StrEnum):
    """A training job's life: queued, running, then succeeded or failed."""

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


class AdapterStatus(enum.StrEnum):
    """An adapter version's state in the registry."""

    candidate = "candidate"
    active = "active"
    rejected = "rejected"
    retired = "retired"


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # Stored as plain strings with a CHECK constraint: portable, and readable from psql.
    return Enum(cls, name=name, native_enum=False, validate_strings=True, length=32)


class Interaction(Base):
    """One question and the answer tanya gave, with everything needed to replay it."""

    __tablename__ = "interactions"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    prompt: Mapped[str] = mapped_column(Text, doc="The exact chat-templated prompt, for training replay.")
    messages: Mapped[list[Any]] = mapped_column(JSON, default=list, doc="The prompt as chat messages.")
    documents: Mapped[list[Any]] = mapped_column(
        JSON, default=list, doc="Retrieved sources in rank order: id, title, source, score."
    )
    found: Mapped[bool] = mapped_column(default=True, doc="False when nothing relevant was retrieved.")
    generator: Mapped[str] = mapped_column(String(200))
    adapter: Mapped[str | None] = mapped_column(String(200))
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    retrieval_ms: Mapped[int] = mapped_column(Integer, default=0)
    origin: Mapped[ChannelKind] = mapped_column(_enum(ChannelKind, "channel_kind"), default=ChannelKind.cli)
    user_id: Mapped[str | None] = mapped_column(String(64))
    team_id: Mapped[str | None] = mapped_column(String(64))
    channel_id: Mapped[str | None] = mapped_column(String(64))
    thread_ts: Mapped[str | None] = mapped_column(String(32))
    message_ts: Mapped[str | None] = mapped_column(String(32), doc="ts of the bot's answer message.")

    votes: Mapped[list[Vote]] = relationship(back_populates="interaction", cascade="all, delete-orphan")
    corrections: Mapped[list[Correction]] = relationship(
        back_populates="interaction", cascade="all, delete-orphan"
    )

    __table_args__ = (UniqueConstraint("channel_id", "message_ts", name="uq_interactions_slack_message"),)


class Vote(Base):
    """A user's single opinion of an answer: changing it updates this row, withdrawing deletes it."""

    __tablename__ = "votes"

    id: Mapped[int] = mapped_column(primary_key=True)
    interaction_id: Mapped[int] = mapped_column(ForeignKey("interactions.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(String(64))
    value: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(32), doc="cli, reaction, button …")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow, index=True)

    interaction: Mapped[Interaction] = relationship(back_populates="votes")

    __table_args__ = (
        UniqueConstraint("interaction_id", "user_id", name="uq_votes_interaction_user"),
        CheckConstraint("value IN (-1, 1)", name="ck_votes_value"),
    )


class VoteReaction(Base):
    """The newest 👍 and 👎 reaction event applied for one person on one answer, present or removed.

    Slack delivers reaction events in any order once several are in flight, and an acknowledged event
    is never sent again, so arrival order cannot decide a vote. Each emoji keeps the ``event_ts`` of the
    last event applied to it (microseconds since the epoch) and whether the reaction is still there; an
    older event is ignored. A removal stays here as a tombstone, so an add that arrives after it cannot
    bring the vote back. The vote itself (``Vote``) is derived from this row: the newer of the reactions
    still present, or none. Totals and training read ``votes`` only, so tombstones never reach them.
    """

    __tablename__ = "vote_reactions"

    id: Mapped[int] = mapped_column(primary_key=True)
    interaction_id: Mapped[int] = mapped_column(ForeignKey("interactions.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(String(64))
    up_event_us: Mapped[int | None] = mapped_column(BigInteger)
    up_present: Mapped[bool] = mapped_column(Boolean, default=False)
    down_event_us: Mapped[int | None] = mapped_column(BigInteger)
    down_present: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    __table_args__ = (
        UniqueConstraint("interaction_id", "user_id", name="uq_vote_reactions_interaction_user"),
    )


class Correction(Base):
    """A better answer written by a person; the strongest training signal there is."""

    __tablename__ = "corrections"

    id: Mapped[int] = mapped_column(primary_key=True)
    interaction_id: Mapped[int] = mapped_column(ForeignKey("interactions.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)

    interaction: Mapped[Interaction] = relationship(back_populates="corrections")


class ProcessedEvent(Base):
    """Slack delivers events at least once; the primary key makes handling exactly-once across processes.

    A claim on work that takes a while (an answer) is leased: ``owner`` holds it until ``lease_until``
    and renews it while it works; ``finished_at`` is set when the work is done. A claim whose lease ran
    out unfinished belonged to a process that died, and may be taken over (``storage.claims``) with the
    ``payload`` it left (the question, the placeholder message). A claim with neither is final at once.
    """

    __tablename__ = "processed_events"

    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64), default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class UndeliveredAnswer(Base):
    """A question tanya accepted but could not answer in Slack, kept so it does not vanish.

    Once Slack's delivery is acknowledged it is never sent again; when every retry of the post failed
    (rate limited past the deadline, Slack down, the channel gone), this row is what is left for an
    operator: which question, where, at which stage, and why.
    """

    __tablename__ = "undelivered_answers"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    event_id: Mapped[str | None] = mapped_column(String(128))
    channel_id: Mapped[str] = mapped_column(String(64))
    question_ts: Mapped[str] = mapped_column(String(32))
    thread_ts: Mapped[str | None] = mapped_column(String(32))
    user_id: Mapped[str | None] = mapped_column(String(64))
    stage: Mapped[str] = mapped_column(
        String(32), doc="placeholder (nothing posted) or answer (final update)"
    )
    error: Mapped[str] = mapped_column(Text)
    interaction_id: Mapped[int | None] = mapped_column(ForeignKey("interactions.id", ondelete="SET NULL"))


class TrainingJob(Base):
    """A request to re-train the adapter, claimed by exactly one worker."""

    __tablename__ = "training_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[JobStatus] = mapped_column(
        _enum(JobStatus, "job_status"), default=JobStatus.queued, index=True
    )
    requested_by: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(32), default="manual", doc="manual, slack, schedule")
    notify_channel: Mapped[str | None] = mapped_column(String(64), doc="Where to post status changes.")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    worker: Mapped[str | None] = mapped_column(String(200))
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    lineage: Mapped[dict[str, Any]] = mapped_column(
        JSON, default=dict, doc="Ids of the votes, corrections and interactions the run learned from."
    )
    error: Mapped[str | None] = mapped_column(Text)
    adapter_id: Mapped[int | None] = mapped_column(ForeignKey("adapter_versions.id", ondelete="SET NULL"))

    adapter: Mapped[AdapterVersion | None] = relationship(foreign_keys=[adapter_id])


class AdapterVersion(Base):
    """A trained LoRA adapter on disk, and whether it serves answers."""

    __tablename__ = "adapter_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    base_model: Mapped[str] = mapped_column(String(200))
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(
        String(64), doc="Of adapter_model.safetensors, checked on load."
    )
    status: Mapped[AdapterStatus] = mapped_column(
        _enum(AdapterStatus, "adapter_status"), default=AdapterStatus.candidate, index=True
    )
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    lineage: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("adapter_versions.id", ondelete="SET NULL"))


# Used by tests and ``tanya status`` to check the live schema matches the models.
ALL_TABLES = sorted(Base.metadata.tables)

__all__ = [
    "ALL_TABLES",
    "AdapterStatus",
    "AdapterVersion",
    "Base",
    "ChannelKind",
    "Correction",
    "Interaction",
    "JobStatus",
    "ProcessedEvent",
    "TrainingJob",
    "UTCDateTime",
    "UndeliveredAnswer",
    "Vote",
    "VoteReaction",
    "utcnow",
]
