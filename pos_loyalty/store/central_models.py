"""The central server's schema (SQLAlchemy 2.0 declarative), portable to SQLite and PostgreSQL.

Chosen so a chain can later distribute it (Citus, CockroachDB):
- the ledger's primary key begins with ``member_id`` (the distribution column), and every
  member-keyed table (balances, cards' member index, overdrafts) can be co-located on it;
- nothing is ordered across nodes by a sequence: event ids are UUIDv7 made by the terminal;
- every row terminals pull carries ``change_xid``, the id of the transaction that last wrote
  it (PostgreSQL ``pg_current_xact_id()``; on SQLite a counter in ``change_clock``, which is
  commit-ordered because SQLite has one writer). The pull cursor is a pair (xid, key) and a
  pull only returns rows whose transaction is finished (see docs/sync.md).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class CentralBase(DeclarativeBase):
    """Declarative base of the central schema (separate metadata from the terminal's)."""


class Store(CentralBase):
    __tablename__ = "stores"

    store_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Terminal(CentralBase):
    """A terminal of one store; its credential is kept only as a SHA-256 of the secret part."""

    __tablename__ = "terminals"

    terminal_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    store_id: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending/active/revoked
    enroll_code_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    enroll_expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    credential_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    enrolled_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    acked_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    clock_offset_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    # highest terminal_seq stored: a later event above max_seq + 1 left a gap
    max_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # points earned through this terminal on central's (UTC) day ``earn_day``
    earn_day: Mapped[date | None] = mapped_column(Date, nullable=True)
    earn_day_points: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # the terminal's last heartbeat (sent with every sync round), for store IT's fleet view
    health_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    software_version: Mapped[str] = mapped_column(String(40), default="", server_default="")
    program_name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    program_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reader_state: Mapped[str] = mapped_column(String(40), default="", server_default="")
    till_state: Mapped[str] = mapped_column(String(40), default="", server_default="")
    outbox_depth: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    oldest_unsent_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_sync_ok_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_error: Mapped[str] = mapped_column(String(200), default="", server_default="")
    held_count: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    conflict_count: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class StorePolicy(CentralBase):
    """Per-store limits central enforces on terminal events; no row = the server defaults."""

    __tablename__ = "store_policies"

    store_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    max_event_points: Mapped[int] = mapped_column(BigInteger)
    max_terminal_day_earn: Mapped[int] = mapped_column(BigInteger)
    offline_member_cap: Mapped[int] = mapped_column(BigInteger)
    offline_terminal_budget: Mapped[int] = mapped_column(BigInteger)
    debit_other_stores: Mapped[bool] = mapped_column(Boolean)


class Member(CentralBase):
    """A member. ``status``: active, blocked, or merged (into ``merged_into``). A member
    started by a blank card at the till is anonymous until store IT claims it (name,
    consent)."""

    __tablename__ = "members"
    __table_args__ = (Index("ix_members_change", "change_xid", "member_id"),
                      Index("ix_members_name_key", "name_key", "member_id"))

    member_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    tier: Mapped[str | None] = mapped_column(String(40), nullable=True)
    birthday: Mapped[date | None] = mapped_column(Date, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    change_xid: Mapped[int] = mapped_column(BigInteger)
    # display_name folded to lower case: the key of a prefix search by name
    name_key: Mapped[str] = mapped_column(String(200), default="", server_default="")
    email: Mapped[str] = mapped_column(String(200), default="", server_default="")
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    consent_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    merged_into: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Balance(CentralBase):
    """The balance cache of a member: the sum of their ledger points, kept by ingest."""

    __tablename__ = "balances"
    __table_args__ = (Index("ix_balances_change", "change_xid", "member_id"),)

    member_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    change_xid: Mapped[int] = mapped_column(BigInteger)


class Card(CentralBase):
    __tablename__ = "cards"
    __table_args__ = (Index("ix_cards_change", "change_xid", "card_id"),)

    card_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(64), index=True)
    uid: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # active / revoked / blocked (lost: a replacement keeps the member and its balance)
    status: Mapped[str] = mapped_column(String(16), default="active")
    change_xid: Mapped[int] = mapped_column(BigInteger)


class Tier(CentralBase):
    __tablename__ = "tiers"
    __table_args__ = (Index("ix_tiers_change", "change_xid", "tier_id"),)

    tier_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    body: Mapped[str] = mapped_column(Text, default="{}")
    change_xid: Mapped[int] = mapped_column(BigInteger)


class Program(CentralBase):
    __tablename__ = "programs"
    __table_args__ = (Index("ix_programs_change", "change_xid", "program_id"),)

    program_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    store_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(Integer, default=1)
    change_xid: Mapped[int] = mapped_column(BigInteger)


class ProgramVersion(CentralBase):
    """Every version of a program ever published, kept for diff and rollback. A version
    goes to ``stores`` (comma-separated; empty = the whole chain) from ``starts_at``; the
    pulled ``programs`` row of a store is the newest version started for it."""

    __tablename__ = "program_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    stores: Mapped[str] = mapped_column(String(2000), default="")
    starts_at: Mapped[datetime] = mapped_column(DateTime)
    published_at: Mapped[datetime] = mapped_column(DateTime)
    note: Mapped[str] = mapped_column(String(200), default="")
    # a rollback republishes an earlier version's body: which one
    copied_from: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # the pulled ``programs`` rows were written for this version (it has started)
    live: Mapped[bool] = mapped_column(Boolean, default=False)


class LedgerEvent(CentralBase):
    """The ledger, central copy; key (member_id, event_id) so it distributes by member."""

    __tablename__ = "ledger_events"
    __table_args__ = (
        PrimaryKeyConstraint("member_id", "event_id"),
        Index("ix_ledger_terminal_seq", "terminal_id", "terminal_seq"),
        Index("ix_ledger_event_id", "event_id"),
        # partial: only held and rejected rows are indexed, applied ones cost nothing here
        Index("ix_ledger_unapplied", "status", postgresql_where=text("status <> 'applied'"),
              sqlite_where=text("status <> 'applied'")),
    )

    member_id: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str] = mapped_column(String(36))
    terminal_id: Mapped[str] = mapped_column(String(64))
    store_id: Mapped[str] = mapped_column(String(64))
    terminal_seq: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    points: Mapped[int] = mapped_column(BigInteger)
    txn_ref: Mapped[str] = mapped_column(String(140))
    terminal_time: Mapped[datetime] = mapped_column(DateTime)
    received_at: Mapped[datetime] = mapped_column(DateTime)
    offline: Mapped[bool] = mapped_column(Boolean, default=True)
    flags: Mapped[str] = mapped_column(String(200), default="")  # e.g. "future,seq_gap"
    # applied (counts in the balance), held (waits for store IT), rejected (never counts)
    status: Mapped[str] = mapped_column(String(16), default="applied",
                                        server_default="applied")
    reason: Mapped[str] = mapped_column(String(200), default="", server_default="")
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    review_note: Mapped[str] = mapped_column(String(200), default="", server_default="")


class Overdraft(CentralBase):
    """A redemption that took a balance below zero; kept until reconciled, never dropped."""

    __tablename__ = "overdrafts"
    __table_args__ = (PrimaryKeyConstraint("member_id", "event_id"),)

    member_id: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str] = mapped_column(String(36))
    terminal_id: Mapped[str] = mapped_column(String(64), index=True)
    store_id: Mapped[str] = mapped_column(String(64))
    points_short: Mapped[int] = mapped_column(BigInteger)
    balance_after: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    resolved: Mapped[bool] = mapped_column(Boolean, default=False)


class ReviewItem(CentralBase):
    """Something store IT must look at that is not a ledger row of its own: a conflicting
    event id (its content is kept in ``detail``), a reused or skipped ``terminal_seq``."""

    __tablename__ = "review_items"

    item_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # conflict / seq_reuse / seq_gap
    terminal_id: Mapped[str] = mapped_column(String(64), index=True)
    store_id: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str] = mapped_column(String(36))
    detail: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    resolved: Mapped[bool] = mapped_column(Boolean, default=False)


class ChangeClock(CentralBase):
    """SQLite only: one row whose counter stands in for a transaction id (single writer)."""

    __tablename__ = "change_clock"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class SunCounter(CentralBase):
    """The highest NTAG 424 DNA read counter any terminal of the chain accepted per tag UID;
    terminals pull it so a SUN URL read once is refused at every other terminal."""

    __tablename__ = "sun_counters"
    __table_args__ = (Index("ix_sun_counters_change", "change_xid", "uid"),)

    uid: Mapped[str] = mapped_column(String(20), primary_key=True)  # upper-case hex
    counter: Mapped[int] = mapped_column(BigInteger)
    terminal_id: Mapped[str] = mapped_column(String(64))  # who reported the highest one
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    change_xid: Mapped[int] = mapped_column(BigInteger)


# -- the store IT console: accounts, sessions, audit log ------------------------------------


class ConsoleUser(CentralBase):
    """A person who signs in to the console; the password is kept as an Argon2id hash."""

    __tablename__ = "console_users"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))  # admin / manager / readonly
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class ConsoleUserStore(CentralBase):
    """A store a store manager may see and change (managers see nothing else)."""

    __tablename__ = "console_user_stores"
    __table_args__ = (PrimaryKeyConstraint("username", "store_id"),)

    username: Mapped[str] = mapped_column(String(64))
    store_id: Mapped[str] = mapped_column(String(64))


class ConsoleSession(CentralBase):
    """A signed-in browser: only the SHA-256 of the cookie's token is kept."""

    __tablename__ = "console_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    csrf_secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)


class AuditEntry(CentralBase):
    """One change made by a person (console or CLI): who, what, when, before and after."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_at", "at"), Index("ix_audit_store", "store_id", "at"))

    audit_id: Mapped[str] = mapped_column(String(36), primary_key=True)  # UUIDv7: time order
    at: Mapped[datetime] = mapped_column(DateTime)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(200))
    store_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    before: Mapped[str] = mapped_column(Text, default="")  # JSON, "" when nothing was there
    after: Mapped[str] = mapped_column(Text, default="")


# -- the customer's phone: product tag taps, coupons, registrations, NPS ----------------------


class PhoneTap(CentralBase):
    """One opening of a product tag's page and what its tag proved (``result``: genuine,
    signed, replayed, forged, unverified). ``token`` (a secret, in the page's form actions)
    lets this visit's forms post; only genuine and signed taps get one."""

    __tablename__ = "phone_taps"
    __table_args__ = (Index("ix_phone_taps_day", "day", "sku"),
                      Index("ix_phone_taps_uid", "uid"))

    tap_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    sku: Mapped[str] = mapped_column(String(32))
    uid: Mapped[str | None] = mapped_column(String(20))  # upper-case hex; None if unreadable
    result: Mapped[str] = mapped_column(String(16))
    counter: Mapped[int | None] = mapped_column(BigInteger)
    store_id: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime)
    day: Mapped[date] = mapped_column(Date)


class PhoneCoupon(CentralBase):
    """The single-use reorder coupon of one tag, issued on its first genuine tap."""

    __tablename__ = "phone_coupons"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    uid: Mapped[str] = mapped_column(String(20), unique=True)
    sku: Mapped[str] = mapped_column(String(32))
    percent: Mapped[int] = mapped_column(Integer)
    issued_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    redeemed_at: Mapped[datetime | None] = mapped_column(DateTime)
    redeemed_by: Mapped[str | None] = mapped_column(String(64))  # terminal id
    redeemed_txn: Mapped[str | None] = mapped_column(String(64))


class PhoneRegistration(CentralBase):
    """A warranty / product registration: one per tagged item."""

    __tablename__ = "phone_registrations"

    uid: Mapped[str] = mapped_column(String(20), primary_key=True)
    sku: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254))
    purchased_on: Mapped[date | None] = mapped_column(Date)
    tap_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(DateTime)


class PhoneNps(CentralBase):
    """A 0-10 "how likely are you to recommend us" answer: one per tagged item (the latest)."""

    __tablename__ = "phone_nps"

    uid: Mapped[str] = mapped_column(String(20), primary_key=True)
    sku: Mapped[str] = mapped_column(String(32))
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text)
    tap_id: Mapped[str] = mapped_column(String(36))
    answered_at: Mapped[datetime] = mapped_column(DateTime)


class MemberPageSession(CentralBase):
    """A member signed in to their own page (by card number or a fresh tap of their card)."""

    __tablename__ = "member_page_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(64), index=True)
    csrf_secret: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(DateTime)


class PhoneTagLink(CentralBase):
    """A product tag tapped at a till during a member's sale: the item's buyer.

    ``engaged_event_id``: the central ledger event of the points for engaging, once set the
    tag earns no more."""

    __tablename__ = "phone_tag_links"

    uid: Mapped[str] = mapped_column(String(20), primary_key=True)
    sku: Mapped[str] = mapped_column(String(32))
    member_id: Mapped[str] = mapped_column(String(64), index=True)
    terminal_id: Mapped[str] = mapped_column(String(64))
    store_id: Mapped[str] = mapped_column(String(64))
    txn_ref: Mapped[str] = mapped_column(String(140))
    linked_at: Mapped[datetime] = mapped_column(DateTime)
    engaged_event_id: Mapped[str | None] = mapped_column(String(36))


class VisitAnswer(CentralBase):
    """The 0-10 answer about one visit, from the link a receipt carries (one per sale)."""

    __tablename__ = "visit_answers"
    __table_args__ = (Index("ix_visit_answers_store", "store_id", "answered_at"),)

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(64))
    store_id: Mapped[str] = mapped_column(String(64))
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text)
    answered_at: Mapped[datetime] = mapped_column(DateTime)


# -- personal offers and the cashier's line ---------------------------------------------------


class IssuedOffer(CentralBase):
    """One member-bound coupon issued by an offer (``offer_id``, from the owner's offers file).

    ``status``: live (the till may apply it), used (once, at ``used_terminal`` in
    ``used_txn``; ``discount`` is the money off that use gave, minor units), expired. Every
    terminal pulls these rows so the member's next tap anywhere in the chain finds the coupon.
    """

    __tablename__ = "issued_offers"
    __table_args__ = (Index("ix_issued_offers_change", "change_xid", "issue_id"),
                      Index("ix_issued_offers_member", "member_id", "offer_id"),
                      Index("ix_issued_offers_offer", "offer_id", "status"))

    issue_id: Mapped[str] = mapped_column(String(36), primary_key=True)  # UUIDv7
    offer_id: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(64))
    run_id: Mapped[str] = mapped_column(String(36))  # the offers run that issued it
    issued_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(16), default="live")
    used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    used_terminal: Mapped[str | None] = mapped_column(String(64), nullable=True)
    used_txn: Mapped[str | None] = mapped_column(String(140), nullable=True)
    discount: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    change_xid: Mapped[int] = mapped_column(BigInteger)


class CashierLine(CentralBase):
    """The one short line the till shows the cashier for a member, chosen at central from
    the member's history (``line``, may be empty), and whether the till may add a birthday
    line itself (``birthday``: the owner's birthday rule is on). No personal data beyond what
    the till already shows."""

    __tablename__ = "cashier_lines"
    __table_args__ = (Index("ix_cashier_lines_change", "change_xid", "member_id"),)

    member_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    line: Mapped[str] = mapped_column(String(80), default="")
    birthday: Mapped[bool] = mapped_column(Boolean, default=False)
    computed_at: Mapped[datetime] = mapped_column(DateTime)
    change_xid: Mapped[int] = mapped_column(BigInteger)


# -- sales pushed by terminals: the baskets behind the ledger, for reports only -------------


class SaleRecord(CentralBase):
    """A sale, refund or void as a terminal summarised it: the terminal's word, which feeds
    reports and the program dry run, never a balance.

    One row per (terminal, pos, txn, kind, refund id); a refund's money and quantities are
    stored negative so that sums over sales and refunds give net figures; a void (a basket
    quoted then dropped) keeps its basket but counts in no revenue.
    """

    __tablename__ = "sales"
    __table_args__ = (
        UniqueConstraint("terminal_id", "pos_id", "txn_id", "kind", "refund_id",
                         name="uq_sales_key"),
        # covers the reports' scans of a period (no table lookup per sale)
        Index("ix_sales_time", "terminal_time", "kind", "store_id", "member_id",
              "paid_total"),
        Index("ix_sales_store_time", "store_id", "terminal_time"),
        # covers the member pass of the reports (kind, store and money read from the index)
        Index("ix_sales_member_time", "member_id", "terminal_time", "kind", "store_id",
              "paid_total"),
    )

    sale_id: Mapped[str] = mapped_column(String(36), primary_key=True)  # UUIDv7 by central
    terminal_id: Mapped[str] = mapped_column(String(64))
    store_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))  # sale / refund / void
    pos_id: Mapped[str] = mapped_column(String(64))
    txn_id: Mapped[str] = mapped_column(String(64))
    refund_id: Mapped[str] = mapped_column(String(64), default="")
    member_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    terminal_time: Mapped[datetime] = mapped_column(DateTime)
    received_at: Mapped[datetime] = mapped_column(DateTime)
    flags: Mapped[str] = mapped_column(String(40), default="")  # future, clock
    basket_total: Mapped[int] = mapped_column(BigInteger)
    discount_total: Mapped[int] = mapped_column(BigInteger)
    paid_total: Mapped[int] = mapped_column(BigInteger)
    points_earned: Mapped[int] = mapped_column(BigInteger)
    points_redeemed: Mapped[int] = mapped_column(BigInteger)
    points: Mapped[int] = mapped_column(BigInteger)  # net change to the member's balance
    coupons: Mapped[str] = mapped_column(Text, default="")  # codes used, comma-separated
    body_hash: Mapped[str] = mapped_column(String(64))  # SHA-256 of the record as pushed


class SaleLine(CentralBase):
    """One basket line of a :class:`SaleRecord`, with the record's member, store and time
    copied in so reports group lines without a join."""

    __tablename__ = "sale_lines"
    __table_args__ = (
        PrimaryKeyConstraint("sale_id", "line_no"),
        Index("ix_sale_lines_time", "terminal_time"),
        Index("ix_sale_lines_member", "member_id", "category"),
    )

    sale_id: Mapped[str] = mapped_column(String(36))
    line_no: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(8))
    store_id: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    terminal_time: Mapped[datetime] = mapped_column(DateTime)
    sku: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(64), default="")
    qty: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[int] = mapped_column(BigInteger)
    discount: Mapped[int] = mapped_column(BigInteger)
    points: Mapped[int] = mapped_column(BigInteger)


class RedeemHold(CentralBase):
    """Points central set aside for a redemption it confirmed online to a terminal.

    ``hold_id`` is the ``event_id`` the terminal gives the sale's redeem event, so the
    later push is recognised as this redemption: it is applied without the offline caps
    and the hold is ``used``. A hold counts against what the member may spend until it is
    used, released (a voided sale) or past ``expires_at``.
    """

    __tablename__ = "redeem_holds"
    __table_args__ = (Index("ix_redeem_holds_member", "member_id", "status"),)

    hold_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(64))
    terminal_id: Mapped[str] = mapped_column(String(64))
    store_id: Mapped[str] = mapped_column(String(64))
    points: Mapped[int] = mapped_column(BigInteger)  # positive
    txn_ref: Mapped[str] = mapped_column(String(140))
    status: Mapped[str] = mapped_column(String(16), default="held")  # held, used, released
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
