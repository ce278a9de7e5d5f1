"""Reading feedback out of the database and deciding what each answer's votes mean.

An answer can collect contradicting votes (one person 👍, two 👎). The majority decides and a tie says
nothing, because training on an answer the team disagrees about teaches noise. Interactions from direct
messages and private channels stay out unless the operator allowed them: people write there assuming
nobody else reads along, and an adapter can repeat what it was trained on.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from storage.models import ChannelKind, Interaction

PRIVATE_ORIGINS = frozenset({ChannelKind.direct_message, ChannelKind.private_channel})
_PUNCTUATION = re.compile(r"[^\w\s]", re.UNICODE)
_SPACES = re.compile(r"\s+")


def normalize_question(text: str) -> str:
    """The key under which near-identical questions meet: case, accents' width, punctuation and spacing ignored."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _PUNCTUATION.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def message_text(message: dict[str, Any]) -> str:
    """Text of a stored chat message, whether plain (``content``: str) or Haystack's dict form (list of parts)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    parts = content or message.get("_content") or []
    return "".join(str(part.get("text", "")) for part in parts if isinstance(part, dict))


def stored_messages(messages: Sequence[dict[str, Any]] | None, prompt: str) -> list[dict[str, str]]:
    """The prompt messages of an interaction: its ``messages`` column, else its prompt when that holds
    the messages as JSON (how ``retrieval.answering.pipeline`` stores them)."""
    if messages:
        return plain_messages(messages)
    try:
        parsed = json.loads(prompt) if prompt.lstrip().startswith("[") else None
    except ValueError:
        parsed = None
    if isinstance(parsed, list) and all(isinstance(item, dict) and "role" in item for item in parsed):
        return plain_messages(parsed)
    return []


def plain_messages(messages: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """Stored messages as ``{"role", "content"}`` dicts, the shape chat templates expect."""
    plain = []
    for message in messages:
        role = str(message.get("role") or message.get("_role") or "user")
        plain.append({"role": role, "content": message_text(message)})
    return plain


@dataclass(frozen=True)
class JudgedAnswer:
    """One interaction with its votes resolved and its corrections attached."""

    interaction_id: int
    question: str
    question_key: str
    prompt: str
    messages: tuple[dict[str, str], ...]
    answer: str
    up: int
    down: int
    vote_ids: tuple[int, ...]
    corrections: tuple[tuple[int, str], ...]
    created_at: datetime

    @property
    def verdict(self) -> int:
        """+1 when most voters liked the answer, -1 when most disliked it, 0 for a tie or no votes."""
        return (self.up > self.down) - (self.up < self.down)

    @property
    def is_good(self) -> bool:
        return self.verdict > 0

    @property
    def is_bad(self) -> bool:
        """👎 majority, or a correction without a 👍 majority: someone wrote a better answer."""
        return self.verdict < 0 or (bool(self.corrections) and self.verdict == 0)


@dataclass
class FeedbackSnapshot:
    """The usable answers, and how many were left out and why (shown in the run summary)."""

    answers: list[JudgedAnswer] = field(default_factory=list)
    excluded: dict[str, int] = field(default_factory=dict)

    def exclude(self, reason: str) -> None:
        self.excluded[reason] = self.excluded.get(reason, 0) + 1


def load_feedback(session: Session, *, include_private: bool) -> FeedbackSnapshot:
    """Every interaction that has votes or corrections, resolved into ``JudgedAnswer`` rows.

    Interactions are read in id order so that everything downstream (deduplication keeps the newest,
    pairing, the split) is deterministic for the same database.
    """
    query = (
        select(Interaction)
        .where(Interaction.votes.any() | Interaction.corrections.any())
        .options(selectinload(Interaction.votes), selectinload(Interaction.corrections))
        .order_by(Interaction.id)
    )
    snapshot = FeedbackSnapshot()
    for interaction in session.scalars(query):
        if interaction.origin in PRIVATE_ORIGINS and not include_private:
            snapshot.exclude("private")
            continue
        if not (interaction.prompt or interaction.messages):
            snapshot.exclude("no_prompt")
            continue
        if not interaction.found:
            # "Nothing relevant found" replies are fixed text, not the model's writing.
            snapshot.exclude("not_found_reply")
            continue
        up = sum(1 for vote in interaction.votes if vote.value > 0)
        down = sum(1 for vote in interaction.votes if vote.value < 0)
        corrections = tuple(
            (correction.id, correction.text.strip())
            for correction in sorted(interaction.corrections, key=lambda item: item.id)
            if correction.text.strip()
        )
        judged = JudgedAnswer(
            interaction_id=interaction.id,
            question=interaction.question,
            question_key=normalize_question(interaction.question),
            prompt=interaction.prompt,
            messages=tuple(stored_messages(interaction.messages, interaction.prompt or "")),
            answer=interaction.answer.strip(),
            up=up,
            down=down,
            vote_ids=tuple(sorted(vote.id for vote in interaction.votes)),
            corrections=corrections,
            created_at=interaction.created_at,
        )
        if judged.verdict == 0 and not corrections:
            snapshot.exclude("tied_votes")
            continue
        snapshot.answers.append(judged)
    return snapshot
