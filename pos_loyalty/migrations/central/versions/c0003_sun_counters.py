"""NTAG 424 DNA SUN read counters of the chain

Revision ID: c0003
Revises: c0001
Create Date: 2026-11-30 06:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c0003"
down_revision = "c0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sun_counters",
        sa.Column("uid", sa.String(length=20), nullable=False),
        sa.Column("counter", sa.BigInteger(), nullable=False),
        sa.Column("terminal_id", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("change_xid", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("uid"),
    )
    with op.batch_alter_table("sun_counters", schema=None) as batch_op:
        batch_op.create_index("ix_sun_counters_change", ["change_xid", "uid"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sun_counters", schema=None) as batch_op:
        batch_op.drop_index("ix_sun_counters_change")
    op.drop_table("sun_counters")
