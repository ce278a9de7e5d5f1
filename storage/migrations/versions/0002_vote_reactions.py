"""Vote reactions: the newest 👍/👎 event applied per person and answer, so late events cannot win.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "vote_reactions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("up_event_us", sa.BigInteger(), nullable=True),
        sa.Column("up_present", sa.Boolean(), nullable=False),
        sa.Column("down_event_us", sa.BigInteger(), nullable=True),
        sa.Column("down_present", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["interaction_id"], ["interactions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("interaction_id", "user_id", name="uq_vote_reactions_interaction_user"),
    )
    with op.batch_alter_table("vote_reactions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_vote_reactions_interaction_id"), ["interaction_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("vote_reactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_vote_reactions_interaction_id"))
    op.drop_table("vote_reactions")
