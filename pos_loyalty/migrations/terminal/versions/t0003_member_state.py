"""member engine state and refunds

Revision ID: t0003
Revises: t0002
Create Date: 2026-11-23 23:05:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "t0003"
down_revision = "t0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "refunds",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("pos_id", sa.String(length=64), nullable=False),
        sa.Column("txn_id", sa.String(length=64), nullable=False),
        sa.Column("refund_id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=True),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("balance_after", sa.BigInteger(), nullable=True),
        sa.Column("lines", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pos_id", "txn_id", "refund_id"),
    )
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("state", sa.Text(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_column("state")
    op.drop_table("refunds")
