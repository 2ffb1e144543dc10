"""open sales kept across a restart

Revision ID: t0004
Revises: t0003
Create Date: 2026-11-30 06:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "t0004"
down_revision = "t0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "open_sales",
        sa.Column("pos_id", sa.String(length=64), nullable=False),
        sa.Column("txn_id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=True),
        sa.Column("member_name", sa.String(length=500), nullable=False),
        sa.Column("member_balance", sa.BigInteger(), nullable=False),
        sa.Column("lines", sa.Text(), nullable=False),
        sa.Column("redeem_points", sa.BigInteger(), nullable=False),
        sa.Column("shown", sa.Text(), nullable=False),
        sa.Column("quoted_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("pos_id", "txn_id"),
    )


def downgrade() -> None:
    op.drop_table("open_sales")
