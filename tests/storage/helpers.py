from __future__ import annotations

from storage import Database
from storage.interactions import NewInteraction, record_interaction


def make_interaction(db: Database, question: str = "How do I reset my VPN?", **fields: object) -> int:
    with db.session() as session:
        interaction = record_interaction(
            session,
            NewInteraction(
                question=question, answer="Use the portal [1].", prompt="<prompt>", generator="test", **fields
            ),  # type: ignore[arg-type]
        )
        return interaction.id
