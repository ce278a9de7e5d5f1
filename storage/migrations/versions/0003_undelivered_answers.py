"""Undelivered answers: questions accepted from Slack whose answer could not be posted.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "undelivered_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=True),
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        sa.Column("question_ts", sa.String(length=32), nullable=False),
        sa.Column("thread_ts", sa.String(length=32), nullable=True),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["interaction_id"], ["interactions.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("undelivered_answers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_undelivered_answers_created_at"), ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("undelivered_answers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_undelivered_answers_created_at"))
    op.drop_table("undelivered_answers")
