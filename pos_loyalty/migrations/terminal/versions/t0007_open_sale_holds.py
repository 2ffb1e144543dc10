"""open sales keep the hold of a redemption central confirmed online

Revision ID: t0007
Revises: t0006
Create Date: 2026-11-30 09:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "t0007"
down_revision = "t0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("open_sales", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hold_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("hold_points", sa.BigInteger(), nullable=False,
                                      server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("open_sales", schema=None) as batch_op:
        batch_op.drop_column("hold_points")
        batch_op.drop_column("hold_id")
