"""the sale outbox, open sales' holds and tag links for a store that reached t0009 before
t0006, t0007 and t0008 came in below it

t0006 (sale outbox), t0007 (open sales keep their hold) and t0008 (tag links and coupons)
were put between t0005 and t0009 after t0009 had been the head: a store already at t0009
counts them as applied and never ran them. This revision runs each of them there, where what
it makes is missing; anywhere else it does nothing.

Revision ID: t0010
Revises: t0009
Create Date: 2026-11-30 13:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pos_loyalty.migrations.terminal.versions import (
    t0006_sale_outbox,
    t0007_open_sale_holds,
    t0008_tag_links_coupons,
)

revision = "t0010"
down_revision = "t0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    insp = sa.inspect(op.get_bind())
    tables = set(insp.get_table_names())
    if "sale_outbox" not in tables:
        t0006_sale_outbox.upgrade()
    if "hold_id" not in {c["name"] for c in insp.get_columns("open_sales")}:
        t0007_open_sale_holds.upgrade()
    if "tag_links" not in tables:
        t0008_tag_links_coupons.upgrade()


def downgrade() -> None:
    """Nothing of its own to undo: t0008, t0007 and t0006 undo what they made."""
