"""personal offers issued to members, and the cashier's line per member

Revision ID: c0010
Revises: c0008
Create Date: 2026-11-30 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c0010"
down_revision = "c0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "issued_offers",
        sa.Column("issue_id", sa.String(length=36), nullable=False),
        sa.Column("offer_id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("issued_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.Column("used_terminal", sa.String(length=64), nullable=True),
        sa.Column("used_txn", sa.String(length=140), nullable=True),
        sa.Column("discount", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("change_xid", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("issue_id"),
    )
    with op.batch_alter_table("issued_offers", schema=None) as batch_op:
        batch_op.create_index("ix_issued_offers_change", ["change_xid", "issue_id"])
        batch_op.create_index("ix_issued_offers_member", ["member_id", "offer_id"])
        batch_op.create_index("ix_issued_offers_offer", ["offer_id", "status"])
    op.create_table(
        "cashier_lines",
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("line", sa.String(length=80), nullable=False),
        sa.Column("birthday", sa.Boolean(), nullable=False),
        sa.Column("computed_at", sa.DateTime(), nullable=False),
        sa.Column("change_xid", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("member_id"),
    )
    with op.batch_alter_table("cashier_lines", schema=None) as batch_op:
        batch_op.create_index("ix_cashier_lines_change", ["change_xid", "member_id"])


def downgrade() -> None:
    with op.batch_alter_table("cashier_lines", schema=None) as batch_op:
        batch_op.drop_index("ix_cashier_lines_change")
    op.drop_table("cashier_lines")
    with op.batch_alter_table("issued_offers", schema=None) as batch_op:
        batch_op.drop_index("ix_issued_offers_offer")
        batch_op.drop_index("ix_issued_offers_member")
        batch_op.drop_index("ix_issued_offers_change")
    op.drop_table("issued_offers")
