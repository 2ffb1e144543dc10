"""the sales outbox: a summary of each sale, refund and void for central's reports

Revision ID: t0006
Revises: t0005
Create Date: 2026-11-30 09:15:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "t0006"
down_revision = "t0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sale_outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("pos_id", sa.String(length=64), nullable=False),
        sa.Column("txn_id", sa.String(length=64), nullable=False),
        sa.Column("refund_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("pushed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sale_outbox_pushed", "sale_outbox", ["pushed"])


def downgrade() -> None:
    op.drop_index("ix_sale_outbox_pushed", table_name="sale_outbox")
    op.drop_table("sale_outbox")
