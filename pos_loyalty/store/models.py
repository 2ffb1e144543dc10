"""The terminal's local schema (SQLAlchemy 2.0 declarative).

The ledger is the truth and the balance a cache of it; every ledger row is also the outbox
entry the sync client pushes to central (``acked`` turns true only on central's answer).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base of the terminal's local schema."""


class Member(Base):
    __tablename__ = "members"

    member_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    tier: Mapped[str | None] = mapped_column(String(40), nullable=True)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    lifetime_spend: Mapped[int] = mapped_column(BigInteger, default=0)
    visits: Mapped[int] = mapped_column(Integer, default=0)
    birthday: Mapped[date | None] = mapped_column(Date, nullable=True)
    # sync: when the balance was last set from central (None: never), for the offline policy
    balance_synced_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # rules engine state (stamps, tier period, coupons, credits, lots, claims...) as JSON;
    # read when a basket is quoted, never on the tap path
    state: Mapped[str] = mapped_column(Text, default="{}", server_default="{}")


class Card(Base):
    __tablename__ = "cards"

    card_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.member_id"), index=True)
    uid: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(16), default="active")


class Sale(Base):
    """A committed sale; (pos_id, txn_id) makes a repeated commit return the first answer."""

    __tablename__ = "sales"
    __table_args__ = (UniqueConstraint("pos_id", "txn_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pos_id: Mapped[str] = mapped_column(String(64))
    txn_id: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    basket_total: Mapped[int] = mapped_column(BigInteger)
    discount_total: Mapped[int] = mapped_column(BigInteger, default=0)
    points: Mapped[int] = mapped_column(BigInteger, default=0)
    balance_after: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16), default="committed")
    committed_at: Mapped[datetime] = mapped_column(DateTime)
    detail: Mapped[str] = mapped_column(Text, default="{}")


class Refund(Base):
    """A refund applied to a committed sale; (pos_id, txn_id, refund_id) makes it idempotent."""

    __tablename__ = "refunds"
    __table_args__ = (UniqueConstraint("pos_id", "txn_id", "refund_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pos_id: Mapped[str] = mapped_column(String(64))
    txn_id: Mapped[str] = mapped_column(String(64))
    refund_id: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    points: Mapped[int] = mapped_column(BigInteger, default=0)
    balance_after: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    lines: Mapped[str] = mapped_column(Text, default="{}")  # sku -> units returned
    created_at: Mapped[datetime] = mapped_column(DateTime)
    detail: Mapped[str] = mapped_column(Text, default="{}")


class LedgerEvent(Base):
    """One change of a member's points; gap-free ``terminal_seq`` per terminal."""

    __tablename__ = "ledger_events"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    terminal_id: Mapped[str] = mapped_column(String(64))
    terminal_seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    member_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # earn, redeem, reversal, adjust, expire
    points: Mapped[int] = mapped_column(BigInteger)
    txn_ref: Mapped[str] = mapped_column(String(140))
    terminal_time: Mapped[datetime] = mapped_column(DateTime)
    offline: Mapped[bool] = mapped_column(Boolean, default=True)
    acked: Mapped[bool] = mapped_column(Boolean, default=False, index=True)


class TerminalState(Base):
    """Single-row table: this terminal's identity and the next ledger sequence number."""

    __tablename__ = "terminal_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    terminal_id: Mapped[str] = mapped_column(String(64))
    next_seq: Mapped[int] = mapped_column(BigInteger, default=1)
    # sync: enrollment, pull cursor and the estimate of (server clock - terminal clock)
    server_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    credential: Mapped[str | None] = mapped_column(String(200), nullable=True)
    store_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    pull_cursor: Mapped[str] = mapped_column(Text, default="{}")
    clock_offset_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    last_sync_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Tier(Base):
    """A tier definition pulled from central (JSON body as central holds it)."""

    __tablename__ = "tiers"

    tier_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    body: Mapped[str] = mapped_column(Text, default="{}")


class ProgramDoc(Base):
    """A loyalty program file pulled from central (TOML text, see rules.program)."""

    __tablename__ = "programs"

    program_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    store_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(Integer, default=1)


class SunCounter(Base):
    """The highest NTAG 424 DNA read counter accepted for a tag UID, here or anywhere in the
    chain (pulled from central): a SUN URL at or below it is a replay.

    ``pushed`` is false while central has not acknowledged this counter.
    """

    __tablename__ = "sun_counters"

    uid: Mapped[str] = mapped_column(String(20), primary_key=True)  # upper-case hex
    counter: Mapped[int] = mapped_column(Integer)
    pushed: Mapped[bool] = mapped_column(Boolean, default=False)


class MemberOffer(Base):
    """A member-bound coupon issued at central (pulled), merged into the member's coupons
    when a basket is quoted while ``status`` is live and ``expires_at`` (UTC) is ahead.

    A use here sets ``status`` used, ``used_txn``/``used_at``/``discount`` in the sale's own
    transaction and ``pushed`` false until central has the use.
    """

    __tablename__ = "member_offers"

    issue_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(64), index=True)
    code: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(16), default="live")
    used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    used_txn: Mapped[str | None] = mapped_column(String(140), nullable=True)
    discount: Mapped[int] = mapped_column(BigInteger, default=0)
    pushed: Mapped[bool] = mapped_column(Boolean, default=True)


class CashierLine(Base):
    """The cashier's line central chose for a member, and whether the birthday rule is on."""

    __tablename__ = "cashier_lines"

    member_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    line: Mapped[str] = mapped_column(String(80), default="")
    birthday: Mapped[bool] = mapped_column(Boolean, default=False)
