"""Recording answers and finding them again from a Slack message."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import ChannelKind, Interaction


@dataclass(frozen=True)
class NewInteraction:
    """What the answering side knows once an answer is complete."""

    question: str
    answer: str
    prompt: str
    generator: str
    messages: Sequence[dict[str, Any]] = ()
    documents: Sequence[dict[str, Any]] = ()
    found: bool = True
    adapter: str | None = None
    latency_ms: int = 0
    retrieval_ms: int = 0
    origin: ChannelKind = ChannelKind.cli
    user_id: str | None = None
    team_id: str | None = None
    channel_id: str | None = None
    thread_ts: str | None = None
    message_ts: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def record_interaction(session: Session, new: NewInteraction) -> Interaction:
    interaction = Interaction(
        question=new.question,
        answer=new.answer,
        prompt=new.prompt,
        messages=list(new.messages),
        documents=list(new.documents),
        found=new.found,
        generator=new.generator,
        adapter=new.adapter,
        latency_ms=new.latency_ms,
        retrieval_ms=new.retrieval_ms,
        origin=new.origin,
        user_id=new.user_id,
        team_id=new.team_id,
        channel_id=new.channel_id,
        thread_ts=new.thread_ts,
        message_ts=new.message_ts,
    )
    session.add(interaction)
    session.flush()
    return interaction


def get_interaction(session: Session, interaction_id: int) -> Interaction | None:
    return session.get(Interaction, interaction_id)


def find_by_slack_message(session: Session, channel_id: str, message_ts: str) -> Interaction | None:
    """The interaction whose answer is the Slack message (channel, ts): how reactions find their answer."""
    return session.scalars(
        select(Interaction).where(Interaction.channel_id == channel_id, Interaction.message_ts == message_ts)
    ).first()


def thread_interactions(session: Session, channel_id: str, thread_ts: str) -> list[Interaction]:
    """Earlier turns of a Slack thread, oldest first, so follow-ups can be answered in context."""
    return list(
        session.scalars(
            select(Interaction)
            .where(Interaction.channel_id == channel_id, Interaction.thread_ts == thread_ts)
            .order_by(Interaction.id)
        )
    )
