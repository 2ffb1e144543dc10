"""sales, refunds and voids pushed by terminals, with their basket lines, for reports

Revision ID: c0007
Revises: c0006
Create Date: 2026-11-30 09:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c0007"
down_revision = "c0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sales",
        sa.Column("sale_id", sa.String(length=36), nullable=False),
        sa.Column("terminal_id", sa.String(length=64), nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("pos_id", sa.String(length=64), nullable=False),
        sa.Column("txn_id", sa.String(length=64), nullable=False),
        sa.Column("refund_id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=True),
        sa.Column("terminal_time", sa.DateTime(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("flags", sa.String(length=40), nullable=False),
        sa.Column("basket_total", sa.BigInteger(), nullable=False),
        sa.Column("discount_total", sa.BigInteger(), nullable=False),
        sa.Column("paid_total", sa.BigInteger(), nullable=False),
        sa.Column("points_earned", sa.BigInteger(), nullable=False),
        sa.Column("points_redeemed", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("coupons", sa.Text(), nullable=False),
        sa.Column("body_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("sale_id"),
        sa.UniqueConstraint("terminal_id", "pos_id", "txn_id", "kind", "refund_id",
                            name="uq_sales_key"),
    )
    op.create_index("ix_sales_time", "sales",
                    ["terminal_time", "kind", "store_id", "member_id", "paid_total"])
    op.create_index("ix_sales_store_time", "sales", ["store_id", "terminal_time"])
    op.create_index("ix_sales_member_time", "sales",
                    ["member_id", "terminal_time", "kind", "store_id", "paid_total"])
    op.create_table(
        "sale_lines",
        sa.Column("sale_id", sa.String(length=36), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=True),
        sa.Column("terminal_time", sa.DateTime(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("qty", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("discount", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("sale_id", "line_no"),
    )
    op.create_index("ix_sale_lines_time", "sale_lines", ["terminal_time"])
    op.create_index("ix_sale_lines_member", "sale_lines", ["member_id", "category"])


def downgrade() -> None:
    op.drop_index("ix_sale_lines_member", table_name="sale_lines")
    op.drop_index("ix_sale_lines_time", table_name="sale_lines")
    op.drop_table("sale_lines")
    op.drop_index("ix_sales_member_time", table_name="sales")
    op.drop_index("ix_sales_store_time", table_name="sales")
    op.drop_index("ix_sales_time", table_name="sales")
    op.drop_table("sales")
