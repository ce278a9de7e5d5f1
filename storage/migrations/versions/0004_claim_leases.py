"""Claim leases: who holds a claim, until when, whether its work finished, and what it needs to resume.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("processed_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("payload", sa.JSON(), nullable=True))
        batch_op.create_index(batch_op.f("ix_processed_events_lease_until"), ["lease_until"], unique=False)
    # Claims taken before leases existed were final: their work is not resumed.
    op.execute("UPDATE processed_events SET finished_at = received_at WHERE finished_at IS NULL")


def downgrade() -> None:
    with op.batch_alter_table("processed_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_processed_events_lease_until"))
        batch_op.drop_column("payload")
        batch_op.drop_column("finished_at")
        batch_op.drop_column("lease_until")
        batch_op.drop_column("owner")
