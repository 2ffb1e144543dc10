"""Product tags linked to their buyers, reorder coupons used here

Revision ID: t0008
Revises: t0007
Create Date: 2026-11-30 09:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "t0008"
down_revision = "t0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tag_links",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uid", sa.String(length=20), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("txn_ref", sa.String(length=140), nullable=False),
        sa.Column("linked_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("uid", "member_id"),
    )
    op.create_index("ix_tag_links_status", "tag_links", ["status"])
    op.create_table(
        "tag_coupons",
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("pos_id", sa.String(length=64), nullable=False),
        sa.Column("txn_id", sa.String(length=64), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=True),
        sa.Column("percent", sa.Integer(), nullable=False),
        sa.Column("max_value", sa.Integer(), nullable=True),
        sa.Column("accepted_at", sa.DateTime(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("offline", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_index("ix_tag_coupons_status", "tag_coupons", ["status"])


def downgrade() -> None:
    op.drop_index("ix_tag_coupons_status", table_name="tag_coupons")
    op.drop_table("tag_coupons")
    op.drop_index("ix_tag_links_status", table_name="tag_links")
    op.drop_table("tag_links")
