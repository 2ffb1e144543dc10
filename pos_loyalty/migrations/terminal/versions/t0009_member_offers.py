"""member-bound offers pulled from central, and the cashier's line per member

Revision ID: t0009
Revises: t0008
Create Date: 2026-11-30 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "t0009"
down_revision = "t0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "member_offers",
        sa.Column("issue_id", sa.String(length=36), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.Column("used_txn", sa.String(length=140), nullable=True),
        sa.Column("discount", sa.BigInteger(), nullable=False),
        sa.Column("pushed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("issue_id"),
    )
    with op.batch_alter_table("member_offers", schema=None) as batch_op:
        batch_op.create_index("ix_member_offers_member_id", ["member_id"])
    op.create_table(
        "cashier_lines",
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("line", sa.String(length=80), nullable=False),
        sa.Column("birthday", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("member_id"),
    )


def downgrade() -> None:
    op.drop_table("cashier_lines")
    with op.batch_alter_table("member_offers", schema=None) as batch_op:
        batch_op.drop_index("ix_member_offers_member_id")
    op.drop_table("member_offers")
