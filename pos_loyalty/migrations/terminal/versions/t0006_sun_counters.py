"""NTAG 424 DNA SUN read counters kept in the store

Revision ID: t0006
Revises: t0003
Create Date: 2026-11-30 06:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "t0006"
down_revision = "t0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sun_counters",
        sa.Column("uid", sa.String(length=20), nullable=False),
        sa.Column("counter", sa.Integer(), nullable=False),
        sa.Column("pushed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("uid"),
    )


def downgrade() -> None:
    op.drop_table("sun_counters")
