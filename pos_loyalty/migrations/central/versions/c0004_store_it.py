"""store IT: member search key and claim fields, program versions, terminal health

Revision ID: c0004
Revises: c0003
Create Date: 2026-11-30 06:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c0004"
down_revision = "c0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("name_key", sa.String(length=200), nullable=False,
                                      server_default=""))
        batch_op.add_column(sa.Column("email", sa.String(length=200), nullable=False,
                                      server_default=""))
        batch_op.add_column(sa.Column("anonymous", sa.Boolean(), nullable=False,
                                      server_default=sa.text("false")))
        batch_op.add_column(sa.Column("consent_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("merged_into", sa.String(length=64), nullable=True))
    op.execute("UPDATE members SET name_key = lower(display_name)")
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.create_index("ix_members_name_key", ["name_key", "member_id"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        # prefix search compares in byte order (COLLATE "C"), whatever the database's
        # collation; these indexes serve those comparisons (SQLite compares bytes anyway)
        for sql in PG_SEARCH_INDEXES:
            op.execute(sql)
    op.create_table(
        "program_versions",
        sa.Column("version", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("stores", sa.String(length=2000), nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=False),
        sa.Column("published_at", sa.DateTime(), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("copied_from", sa.Integer(), nullable=True),
        sa.Column("live", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    with op.batch_alter_table("terminals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("health_at", sa.DateTime(), nullable=True))
        for name, length in (("software_version", 40), ("program_name", 200),
                             ("reader_state", 40), ("till_state", 40), ("last_error", 200)):
            batch_op.add_column(sa.Column(name, sa.String(length=length), nullable=False,
                                          server_default=""))
        batch_op.add_column(sa.Column("program_version", sa.Integer(), nullable=True))
        for name in ("outbox_depth", "held_count", "conflict_count"):
            batch_op.add_column(sa.Column(name, sa.BigInteger(), nullable=False,
                                          server_default="0"))
        batch_op.add_column(sa.Column("oldest_unsent_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("last_sync_ok_at", sa.DateTime(), nullable=True))


PG_SEARCH_INDEXES = (
    'CREATE INDEX ix_members_id_c ON members (member_id COLLATE "C")',
    'CREATE INDEX ix_members_name_key_c ON members (name_key COLLATE "C", member_id)',
    'CREATE INDEX ix_cards_card_id_c ON cards (card_id COLLATE "C")',
)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in ("ix_members_id_c", "ix_members_name_key_c", "ix_cards_card_id_c"):
            op.execute(f"DROP INDEX {name}")
    with op.batch_alter_table("terminals", schema=None) as batch_op:
        for name in ("health_at", "software_version", "program_name", "reader_state",
                     "till_state", "last_error", "program_version", "outbox_depth",
                     "held_count", "conflict_count", "oldest_unsent_at", "last_sync_ok_at"):
            batch_op.drop_column(name)
    op.drop_table("program_versions")
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_index("ix_members_name_key")
        for name in ("name_key", "email", "anonymous", "consent_at", "merged_into"):
            batch_op.drop_column(name)
