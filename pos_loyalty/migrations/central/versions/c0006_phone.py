"""the customer's phone: tag taps, coupons, registrations, NPS, member pages, tag links

Revision ID: c0006
Revises: c0005
Create Date: 2026-11-30 07:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c0006"
down_revision = "c0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "phone_taps",
        sa.Column("tap_id", sa.String(length=36), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=True),
        sa.Column("sku", sa.String(length=32), nullable=False),
        sa.Column("uid", sa.String(length=20), nullable=True),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("counter", sa.BigInteger(), nullable=True),
        sa.Column("store_id", sa.String(length=64), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("tap_id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_phone_taps_day", "phone_taps", ["day", "sku"])
    op.create_index("ix_phone_taps_uid", "phone_taps", ["uid"])
    op.create_table(
        "phone_coupons",
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("uid", sa.String(length=20), nullable=False),
        sa.Column("sku", sa.String(length=32), nullable=False),
        sa.Column("percent", sa.Integer(), nullable=False),
        sa.Column("issued_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("redeemed_at", sa.DateTime(), nullable=True),
        sa.Column("redeemed_by", sa.String(length=64), nullable=True),
        sa.Column("redeemed_txn", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("code"),
        sa.UniqueConstraint("uid"),
    )
    op.create_table(
        "phone_registrations",
        sa.Column("uid", sa.String(length=20), nullable=False),
        sa.Column("sku", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("purchased_on", sa.Date(), nullable=True),
        sa.Column("tap_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("uid"),
    )
    op.create_table(
        "phone_nps",
        sa.Column("uid", sa.String(length=20), nullable=False),
        sa.Column("sku", sa.String(length=32), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("tap_id", sa.String(length=36), nullable=False),
        sa.Column("answered_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("uid"),
    )
    op.create_table(
        "member_page_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("csrf_secret", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_member_page_sessions_member_id", "member_page_sessions",
                    ["member_id"])
    op.create_table(
        "phone_tag_links",
        sa.Column("uid", sa.String(length=20), nullable=False),
        sa.Column("sku", sa.String(length=32), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("terminal_id", sa.String(length=64), nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("txn_ref", sa.String(length=140), nullable=False),
        sa.Column("linked_at", sa.DateTime(), nullable=False),
        sa.Column("engaged_event_id", sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint("uid"),
    )
    op.create_index("ix_phone_tag_links_member_id", "phone_tag_links", ["member_id"])
    op.create_table(
        "visit_answers",
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("answered_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index("ix_visit_answers_store", "visit_answers", ["store_id", "answered_at"])


def downgrade() -> None:
    op.drop_index("ix_visit_answers_store", table_name="visit_answers")
    op.drop_table("visit_answers")
    op.drop_index("ix_phone_tag_links_member_id", table_name="phone_tag_links")
    op.drop_table("phone_tag_links")
    op.drop_index("ix_member_page_sessions_member_id", table_name="member_page_sessions")
    op.drop_table("member_page_sessions")
    op.drop_table("phone_nps")
    op.drop_table("phone_registrations")
    op.drop_table("phone_coupons")
    op.drop_index("ix_phone_taps_uid", table_name="phone_taps")
    op.drop_index("ix_phone_taps_day", table_name="phone_taps")
    op.drop_table("phone_taps")
