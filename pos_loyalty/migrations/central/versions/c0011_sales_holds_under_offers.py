"""sales and redeem holds for a database that reached c0010 before c0007 and c0008 came in
below it

c0007 (sales) and c0008 (redeem holds) were put between c0006 and c0010 after c0010 had been
the head: a database already at c0010 counts them as applied and never ran them. This
revision runs each of them there, where its table is missing; anywhere else it does nothing.

Revision ID: c0011
Revises: c0010
Create Date: 2026-11-30 13:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pos_loyalty.migrations.central.versions import c0007_sales, c0008_redeem_holds

revision = "c0011"
down_revision = "c0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    tables = set(sa.inspect(op.get_bind()).get_table_names())
    if "sales" not in tables:
        c0007_sales.upgrade()
    if "redeem_holds" not in tables:
        c0008_redeem_holds.upgrade()


def downgrade() -> None:
    """Nothing of its own to undo: c0008 and c0007 drop their tables."""
