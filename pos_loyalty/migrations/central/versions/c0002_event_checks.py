"""central validates events: held/rejected status, review items, store policies

Revision ID: c0002
Revises: c0001
Create Date: 2026-11-30 06:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c0002"
down_revision = "c0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "store_policies",
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("max_event_points", sa.BigInteger(), nullable=False),
        sa.Column("max_terminal_day_earn", sa.BigInteger(), nullable=False),
        sa.Column("offline_member_cap", sa.BigInteger(), nullable=False),
        sa.Column("offline_terminal_budget", sa.BigInteger(), nullable=False),
        sa.Column("debit_other_stores", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("store_id"),
    )
    op.create_table(
        "review_items",
        sa.Column("item_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("terminal_id", sa.String(length=64), nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("resolved", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("item_id"),
    )
    with op.batch_alter_table("review_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_review_items_terminal_id"), ["terminal_id"],
                              unique=False)
    with op.batch_alter_table("ledger_events", schema=None) as batch_op:
        batch_op.alter_column("flags", existing_type=sa.String(length=64),
                              type_=sa.String(length=200), existing_nullable=False)
        batch_op.add_column(sa.Column("status", sa.String(length=16), nullable=False,
                                      server_default="applied"))
        batch_op.add_column(sa.Column("reason", sa.String(length=200), nullable=False,
                                      server_default=""))
        batch_op.add_column(sa.Column("reviewed_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("review_note", sa.String(length=200), nullable=False,
                                      server_default=""))
        batch_op.create_index("ix_ledger_event_id", ["event_id"], unique=False)
        batch_op.create_index("ix_ledger_unapplied", ["status"], unique=False,
                              postgresql_where=sa.text("status <> 'applied'"),
                              sqlite_where=sa.text("status <> 'applied'"))
    with op.batch_alter_table("terminals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("max_seq", sa.BigInteger(), nullable=False,
                                      server_default="0"))
        batch_op.add_column(sa.Column("earn_day", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("earn_day_points", sa.BigInteger(), nullable=False,
                                      server_default="0"))
    # terminals enrolled before: their highest stored sequence is where gap checks start
    op.execute("UPDATE terminals SET max_seq = COALESCE((SELECT MAX(terminal_seq) FROM "
               "ledger_events WHERE ledger_events.terminal_id = terminals.terminal_id), 0)")


def downgrade() -> None:
    with op.batch_alter_table("terminals", schema=None) as batch_op:
        batch_op.drop_column("earn_day_points")
        batch_op.drop_column("earn_day")
        batch_op.drop_column("max_seq")
    with op.batch_alter_table("ledger_events", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_unapplied")
        batch_op.drop_index("ix_ledger_event_id")
        batch_op.drop_column("review_note")
        batch_op.drop_column("reviewed_at")
        batch_op.drop_column("reason")
        batch_op.drop_column("status")
        batch_op.alter_column("flags", existing_type=sa.String(length=200),
                              type_=sa.String(length=64), existing_nullable=False)
    with op.batch_alter_table("review_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_items_terminal_id"))
    op.drop_table("review_items")
    op.drop_table("store_policies")
