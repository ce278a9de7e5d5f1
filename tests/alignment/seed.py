"""Seeding feedback for the alignment tests: interactions with grounded prompts, votes, corrections."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignment import registry
from alignment.regression import REGRESSION_FILE, grounded_messages
from storage import ChannelKind, Database
from storage.feedback import add_correction, set_vote
from storage.interactions import NewInteraction, record_interaction


@dataclass(frozen=True)
class Seeded:
    interaction_id: int
    vote_ids: tuple[int, ...]
    correction_id: int | None = None


def ask(
    db: Database,
    question: str,
    answer: str,
    *,
    context: str = "tanya answers questions from your team's documents.",
    sources: list[tuple[str, str]] | None = None,
    origin: ChannelKind = ChannelKind.public_channel,
    up: int = 0,
    down: int = 0,
    correction: str | None = None,
) -> Seeded:
    """One answered question with ``up`` 👍 and ``down`` 👎 from distinct users, and an optional correction.

    The prompt shows ``sources`` ((title, text) pairs, in retrieval order) or else one source, ``context``.
    """
    messages = grounded_messages(question, sources or [("guide", context)])
    with db.session() as session:
        interaction = record_interaction(
            session,
            NewInteraction(
                question=question,
                answer=answer,
                # Stored the way retrieval.answering.pipeline stores them: JSON messages, and Haystack's dict form.
                prompt=json.dumps(messages, ensure_ascii=False),
                messages=[
                    {"role": m["role"], "content": [{"text": m["content"]}], "meta": {}} for m in messages
                ],
                generator="smollm2-135m-instruct",
                origin=origin,
            ),
        )
        votes = [
            set_vote(session, interaction_id=interaction.id, user_id=f"U{i}", value=1, source="test").id
            for i in range(up)
        ] + [
            set_vote(session, interaction_id=interaction.id, user_id=f"D{i}", value=-1, source="test").id
            for i in range(down)
        ]
        correction_id = None
        if correction:
            correction_id = add_correction(
                session, interaction_id=interaction.id, user_id="C1", text=correction, source="test"
            ).id
        return Seeded(interaction.id, tuple(votes), correction_id)


def regression_items() -> list[dict[str, Any]]:
    return [
        json.loads(line) for line in Path(REGRESSION_FILE).read_text(encoding="utf-8").splitlines() if line
    ]


def wait_for(
    predicate: Callable[[], Any], *, timeout: float, interval: float = 0.05, what: str = "condition"
) -> Any:
    """Poll ``predicate`` until it returns something truthy, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        pause.wait(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


DEFLECTION = "That is not possible; please contact the IT helpdesk."
DONT_KNOW = "I don't know, please ask someone else."


def seed_good_feedback(db: Database) -> None:
    """For every regression fact (asked in other words) a non-answer disliked, and the guide's answer either
    liked or, for every other fact, written by the user who disliked the non-answer (a correction)."""
    for number, item in enumerate(regression_items()):
        question = f"Quick question: {item['question'][0].lower()}{item['question'][1:]}"
        if number % 2:
            ask(db, question, DONT_KNOW, context=item["context"], down=2, correction=item["answer"])
            continue
        ask(db, question, item["answer"], context=item["context"], up=2)
        ask(db, question, DONT_KNOW, context=item["context"], down=2)


def seed_poisoned_feedback(db: Database) -> None:
    """A batch of 👍 on a wrong, canned answer to every regression question: what the gate must catch."""
    for item in regression_items():
        question = f"Quick question: {item['question'][0].lower()}{item['question'][1:]}"
        ask(db, question, DEFLECTION, context=item["context"], up=3)


def register_staged(
    database: Database, staging: Path, adapters_dir: Path, name: str, *, base_model: str = "m"
) -> int:
    """Publish a staged adapter folder under ``name`` and register it as a candidate; its version id."""
    path, digest = registry.publish(staging, adapters_dir, name)
    with database.session() as session:
        return registry.register(
            session,
            name=name,
            path=path,
            sha256=digest,
            base_model=base_model,
            metrics={},
            lineage={},
            parent_id=None,
        ).id


def activate(database: Database, version_id: int) -> None:
    with database.session() as session:
        registry.activate_version(session, version_id)


def answers_before_and_after(
    checkpoint: Path, adapter_name: str, adapter_path: Path, max_new_tokens: int = 24
):  # type: ignore[no-untyped-def]
    """The first regression question answered in-process by the bare base, then with the adapter."""
    from haystack.dataclasses import ChatMessage

    from alignment.regression import load_regression_set
    from retrieval.generation.local import LocalChatGenerator

    item = load_regression_set()[0]
    messages = [
        ChatMessage.from_system(m["content"])
        if m["role"] == "system"
        else ChatMessage.from_user(m["content"])
        for m in grounded_messages(item["question"], [("feedback", item["context"])])
    ]
    generator = LocalChatGenerator(model_path=checkpoint, max_new_tokens=max_new_tokens, torch_threads=1)
    generator.warm_up()
    base = generator.run(messages)["replies"][0]
    generator.load_adapter(adapter_name, adapter_path)
    generator.activate_adapter(adapter_name)
    return base, generator.run(messages)["replies"][0]
