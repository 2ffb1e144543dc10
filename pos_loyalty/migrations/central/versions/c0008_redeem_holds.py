"""Points held for redemptions central confirmed online

Revision ID: c0008
Revises: c0007
Create Date: 2026-11-30 09:15:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c0008"
down_revision = "c0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "redeem_holds",
        sa.Column("hold_id", sa.String(length=36), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("terminal_id", sa.String(length=64), nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("txn_ref", sa.String(length=140), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("hold_id"),
    )
    with op.batch_alter_table("redeem_holds", schema=None) as batch_op:
        batch_op.create_index("ix_redeem_holds_member", ["member_id", "status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("redeem_holds", schema=None) as batch_op:
        batch_op.drop_index("ix_redeem_holds_member")
    op.drop_table("redeem_holds")
