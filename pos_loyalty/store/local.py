"""The terminal's local store: member lookup and the sale + ledger write, offline-first.

SQLite by default, in WAL mode with ``synchronous=FULL`` so a committed sale survives a
power cut. A sale, its ledger event and the balance change are one transaction.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    case,
    create_engine,
    event,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from pos_loyalty.errors import StoreError
from pos_loyalty.ids import uuid7
from pos_loyalty.rules import LedgerEntry, MemberView, Quote
from pos_loyalty.store import sun_counters
from pos_loyalty.store.engine_state import decode_state, encode_state
from pos_loyalty.store.models import (
    Base,
    Card,
    LedgerEvent,
    Member,
    Refund,
    Sale,
    TerminalState,
)
from pos_loyalty.sync.policy import OfflinePolicy, RedeemDecision, decide_redeem


@dataclass(frozen=True)
class MemberRecord:
    """A member as the till needs to see them, found by card."""

    member_id: str
    display_name: str
    tier: str | None
    balance: int
    lifetime_spend: int
    visits: int
    card_id: str
    card_status: str


@dataclass(frozen=True)
class SaleResult:
    """The answer to a commit; a repeated commit returns the stored one."""

    pos_id: str
    txn_id: str
    member_id: str | None
    points: int
    balance_after: int
    repeated: bool = False


def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


def make_engine(url: str) -> Engine:
    """An engine for the local store URL, with SQLite made crash-safe."""
    try:
        engine = create_engine(url)
    except (SQLAlchemyError, ValueError) as exc:
        raise StoreError(f"invalid database URL {url!r}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


class LocalStore:
    """Member lookup and sale commits against the terminal's own database."""

    def __init__(self, url: str, *, terminal_id: str = "T-LOCAL") -> None:
        self.url = url
        self.engine = make_engine(url)
        try:
            insp = inspect(self.engine)
            old = insp.has_table("members") and "state" not in {
                c["name"] for c in insp.get_columns("members")}
            if old:  # made by an older version: its members lack engine state
                self.engine.dispose()
                raise StoreError(f"local store {url!r} has an older schema; run "
                                 f"`pos-loyalty db upgrade --terminal {url}` first")
            Base.metadata.create_all(self.engine)
        except OperationalError as exc:
            raise StoreError(f"cannot open local store {url!r}: {exc.orig}") from exc
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._local = threading.local()
        self.terminal_id = self._ensure_terminal(terminal_id)
        lookup = select(
            Member.member_id, Member.display_name, Member.tier, Member.balance,
            Member.lifetime_spend, Member.visits, Card.card_id, Card.status,
        ).join(Card, Card.member_id == Member.member_id)
        self._by_card = self._lookup(lookup.where(Card.card_id == bindparam("key")))
        self._by_uid = self._lookup(lookup.where(Card.uid == bindparam("key")))

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        self.engine.dispose()

    def session(self) -> Session:
        return self._sessions()

    def _ensure_terminal(self, terminal_id: str) -> str:
        with self.session() as s, s.begin():
            state = s.get(TerminalState, 1)
            if state is None:
                s.add(TerminalState(id=1, terminal_id=terminal_id, next_seq=1))
                return terminal_id
            return state.terminal_id

    # -- lookups -------------------------------------------------------------------------

    def find_by_card(self, card_id: str) -> MemberRecord | None:
        """The member holding this card number, or None."""
        return self._find(self._by_card, card_id)

    def find_by_uid(self, uid: str) -> MemberRecord | None:
        """The member whose card has this UID (legacy UID-only cards), or None."""
        return self._find(self._by_uid, uid.upper())

    def _lookup(self, stmt: Any) -> tuple[Any, str | None]:
        """A lookup statement, and on SQLite its SQL compiled once for the fast path."""
        if self.engine.dialect.name != "sqlite":
            return stmt, None
        return stmt, str(stmt.compile(dialect=self.engine.dialect))

    def _find(self, lookup: tuple[Any, str | None], key: str) -> MemberRecord | None:
        stmt, sql = lookup
        if sql is not None:
            return self._find_fast(sql, key)
        with self.engine.connect() as conn:
            row = conn.execute(stmt, {"key": key}).first()
        return None if row is None else MemberRecord(*row)

    def _find_fast(self, sql: str, key: str) -> MemberRecord | None:
        """The tap path on SQLite: a per-thread DBAPI connection and SQL compiled once.

        SQLAlchemy's execute machinery costs ~0.5 ms a call, ten times the lookup itself;
        bench/bench_lookup.py measures both against a bare sqlite3 lookup.
        """
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self.engine.raw_connection()
        try:
            row = conn.cursor().execute(sql, (key,)).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"member lookup failed: {exc}") from exc
        return None if row is None else MemberRecord(*row)

    # -- writes --------------------------------------------------------------------------

    def add_member(
        self, member_id: str, display_name: str, *, card_id: str, uid: str | None = None,
        tier: str | None = None, balance: int = 0,
    ) -> None:
        with self.session() as s, s.begin():
            s.add(Member(member_id=member_id, display_name=display_name, tier=tier,
                         balance=balance, lifetime_spend=0, visits=0))
            s.flush()  # the card's foreign key needs the member row first
            s.add(Card(card_id=card_id, member_id=member_id,
                       uid=uid.upper() if uid else None, status="active"))

    def commit_sale(
        self, *, pos_id: str, txn_id: str, member_id: str | None, basket_total: int,
        discount_total: int, points: int, now: datetime, detail: dict[str, Any] | None = None,
    ) -> SaleResult:
        """Record a sale and its earned points in one transaction; idempotent per txn."""
        try:
            with self.session() as s, s.begin():
                prior = self._prior_sale(s, pos_id, txn_id)
                if prior is not None:
                    return prior
                balance_after = 0
                if member_id is not None:
                    member = s.get(Member, member_id)
                    if member is None:
                        raise StoreError(f"unknown member {member_id}")
                    member.balance += points
                    member.lifetime_spend += basket_total - discount_total
                    member.visits += 1
                    balance_after = member.balance
                    if points:
                        self._append_ledger(s, member_id, "earn", points,
                                            f"{pos_id}/{txn_id}", now)
                s.add(Sale(pos_id=pos_id, txn_id=txn_id, member_id=member_id,
                           basket_total=basket_total, discount_total=discount_total,
                           points=points, balance_after=balance_after, committed_at=now,
                           detail=json.dumps(detail or {}, sort_keys=True)))
        except IntegrityError as exc:  # a concurrent writer committed the same txn first
            with self.session() as s:
                prior = self._prior_sale(s, pos_id, txn_id)
            if prior is None:
                raise StoreError(f"could not record sale {pos_id}/{txn_id}: {exc.orig}") from exc
            return prior
        except OperationalError as exc:
            raise StoreError(f"could not record sale {pos_id}/{txn_id}: {exc.orig}") from exc
        return SaleResult(pos_id, txn_id, member_id, points, balance_after)

    def find_sale(self, pos_id: str, txn_id: str) -> SaleResult | None:
        """The stored answer for a committed transaction, or None."""
        with self.session() as s:
            return self._prior_sale(s, pos_id, txn_id)

    @staticmethod
    def _prior_sale(s: Session, pos_id: str, txn_id: str) -> SaleResult | None:
        sale = s.scalars(
            select(Sale).where(Sale.pos_id == pos_id, Sale.txn_id == txn_id)
        ).first()
        if sale is None:
            return None
        return SaleResult(pos_id, txn_id, sale.member_id, sale.points, sale.balance_after,
                          repeated=True)

    def _append_ledger(
        self, s: Session, member_id: str, kind: str, points: int, txn_ref: str, now: datetime,
    ) -> LedgerEvent:
        """Append one ledger event with the next gap-free sequence number (same transaction)."""
        seq = s.execute(
            update(TerminalState).where(TerminalState.id == 1)
            .values(next_seq=TerminalState.next_seq + 1)
            .returning(TerminalState.next_seq)
        ).scalar_one() - 1
        ev = LedgerEvent(event_id=str(uuid7()), terminal_id=self.terminal_id, terminal_seq=seq,
                         member_id=member_id, kind=kind, points=points, txn_ref=txn_ref,
                         terminal_time=now, offline=True, acked=False)
        s.add(ev)
        return ev

    def ledger(self, member_id: str | None = None) -> list[LedgerEvent]:
        """Ledger events in sequence order (all, or one member's)."""
        stmt = select(LedgerEvent).order_by(LedgerEvent.terminal_seq)
        if member_id is not None:
            stmt = stmt.where(LedgerEvent.member_id == member_id)
        with self.session() as s:
            return list(s.scalars(stmt))

    def member_count(self) -> int:
        with self.session() as s:
            return s.scalar(select(func.count()).select_from(Member)) or 0

    # -- engine state, sales with quotes, refunds, expiry ---------------------------------

    @staticmethod
    @contextmanager
    def _translated(what: str) -> Iterator[None]:
        """SQLAlchemy's errors as StoreError naming what was being done."""
        try:
            yield
        except SQLAlchemyError as exc:
            raise StoreError(f"{what} failed: {exc}") from exc

    def member_view(self, member_id: str) -> MemberView | None:
        """Everything the rules engine may know of a member (columns + ``members.state``)."""
        stmt = select(Member.member_id, Member.balance, Member.tier, Member.lifetime_spend,
                      Member.visits, Member.birthday, Member.state).where(
            Member.member_id == member_id)
        try:
            with self.engine.connect() as conn:
                row = conn.execute(stmt).first()
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read member {member_id}: {exc}") from exc
        if row is None:
            return None
        return decode_state(row.state, {
            "member_id": row.member_id, "balance": row.balance, "tier": row.tier,
            "lifetime_spend": row.lifetime_spend, "visits": row.visits,
            "birthday": row.birthday})

    def set_member_state(self, view: MemberView) -> None:
        """Overwrite a member's engine state (enrolment, staff credits, tests, migration)."""
        with self._translated(f"saving member {view.member_id}"), \
                self.session() as s, s.begin():
            member = s.get(Member, view.member_id)
            if member is None:
                raise StoreError(f"unknown member {view.member_id}")
            member.tier = view.tier
            member.birthday = view.birthday
            member.state = encode_state(view)

    def _write_member(self, s: Session, member_id: str, points: int,
                      after: MemberView | None, *, visit: int = 0,
                      spend: int = 0) -> int | None:
        """Move a member's balance by ``points`` (relative: a sync pull may have moved it)
        and store their engine state; the new balance, or None for a member not held here."""
        values: dict[str, Any] = {"balance": Member.balance + points}
        if after is not None:
            values.update(state=encode_state(after), tier=after.tier,
                          lifetime_spend=case((Member.lifetime_spend + spend < 0, 0),
                                              else_=Member.lifetime_spend + spend),
                          visits=Member.visits + visit)
        balance = s.execute(update(Member).where(Member.member_id == member_id)
                            .values(values).returning(Member.balance)).scalar_one_or_none()
        return None if balance is None else int(balance)

    def _write_entries(self, s: Session, entries: Sequence[LedgerEntry], now: datetime) -> None:
        for e in entries:
            if e.points:
                self._append_ledger(s, e.member_id, e.kind, e.points, fit_ref(e.ref), now)

    def record_sale(
        self, *, pos_id: str, txn_id: str, member_id: str | None, sale: Quote, now: datetime,
        entries: Sequence[LedgerEntry] = (), member_after: MemberView | None = None,
    ) -> SaleResult:
        """Write a sale with its whole quote, its ledger entries and the member's new engine
        state in one transaction; idempotent per (pos_id, txn_id).

        ``entries`` for other members (a referrer) move their balance too when they are
        held here; the ledger carries them to central either way.
        """
        try:
            with self.session() as s, s.begin():
                prior = self._prior_sale(s, pos_id, txn_id)
                if prior is not None:
                    return prior
                points, balance_after = 0, 0
                if member_id is not None:
                    points = sum(e.points for e in entries if e.member_id == member_id)
                    got = self._write_member(s, member_id, points, member_after, visit=1,
                                             spend=sale.qualifying_spend)
                    if got is None:
                        raise StoreError(f"unknown member {member_id}")
                    balance_after = got
                others: dict[str, int] = {}
                for e in entries:
                    if e.member_id != member_id:
                        others[e.member_id] = others.get(e.member_id, 0) + e.points
                for other, pts in sorted(others.items()):
                    self._write_member(s, other, pts, None)
                self._write_entries(s, entries, now)
                s.add(Sale(pos_id=pos_id, txn_id=txn_id, member_id=member_id,
                           basket_total=sale.basket_total, discount_total=sale.discount_total,
                           points=points, balance_after=balance_after, committed_at=now,
                           detail=json.dumps({"summary": sale.summary,
                                              "quote": sale.to_dict()}, sort_keys=True)))
        except IntegrityError as exc:  # a concurrent writer committed the same txn first
            with self.session() as s:
                prior = self._prior_sale(s, pos_id, txn_id)
            if prior is None:
                raise StoreError(f"could not record sale {pos_id}/{txn_id}: {exc.orig}") from exc
            return prior
        except OperationalError as exc:
            raise StoreError(f"could not record sale {pos_id}/{txn_id}: {exc.orig}") from exc
        return SaleResult(pos_id, txn_id, member_id, points, balance_after)

    def sale_record(self, pos_id: str, txn_id: str) -> StoredSale | None:
        """A committed sale with its stored quote and what its refunds did so far."""
        with self._translated(f"reading sale {pos_id}/{txn_id}"), self.session() as s:
            sale = s.scalars(select(Sale).where(Sale.pos_id == pos_id,
                                                Sale.txn_id == txn_id)).first()
            if sale is None:
                return None
            refunds = list(s.scalars(select(Refund).where(
                Refund.pos_id == pos_id, Refund.txn_id == txn_id).order_by(Refund.id)))
        try:
            detail = json.loads(sale.detail or "{}")
            returned: dict[str, int] = {}
            for r in refunds:
                for sku, qty in json.loads(r.lines).items():
                    returned[sku] = returned.get(sku, 0) + int(qty)
        except (ValueError, TypeError, AttributeError) as exc:
            raise StoreError(f"sale {pos_id}/{txn_id}: stored detail is damaged: {exc}") from exc
        quote = detail.get("quote") if isinstance(detail, dict) else None
        balance_after = refunds[-1].balance_after if refunds else sale.balance_after
        return StoredSale(
            pos_id, txn_id, sale.member_id, sale.points, sale.balance_after,
            quote if isinstance(quote, dict) else None, returned,
            sum(r.points for r in refunds), balance_after, len(refunds))

    def find_refund(self, pos_id: str, txn_id: str, refund_id: str) -> RefundRecord | None:
        """The stored answer to a refund already applied, or None."""
        with self._translated(f"reading refund {refund_id}"), self.session() as s:
            return self._prior_refund(s, pos_id, txn_id, refund_id)

    @staticmethod
    def _prior_refund(s: Session, pos_id: str, txn_id: str,
                      refund_id: str) -> RefundRecord | None:
        r = s.scalars(select(Refund).where(Refund.pos_id == pos_id, Refund.txn_id == txn_id,
                                           Refund.refund_id == refund_id)).first()
        if r is None:
            return None
        return RefundRecord(pos_id, txn_id, refund_id, r.member_id, r.points, r.balance_after,
                            repeated=True)

    def record_refund(
        self, *, pos_id: str, txn_id: str, refund_id: str, member_id: str | None,
        returned: Mapping[str, int], entries: Sequence[LedgerEntry],
        member_after: MemberView | None, spend_reversed: int, now: datetime,
        detail: Mapping[str, Any] | None = None,
    ) -> RefundRecord:
        """Write a refund's ledger entries, the member's state after it and the refund itself
        in one transaction; idempotent per (pos_id, txn_id, refund_id)."""
        try:
            with self.session() as s, s.begin():
                prior = self._prior_refund(s, pos_id, txn_id, refund_id)
                if prior is not None:
                    return prior
                points, balance_after = 0, None
                if member_id is not None:
                    points = sum(e.points for e in entries if e.member_id == member_id)
                    balance_after = self._write_member(s, member_id, points, member_after,
                                                       spend=-spend_reversed)
                    if balance_after is None:
                        raise StoreError(f"unknown member {member_id}")
                self._write_entries(s, entries, now)
                s.add(Refund(pos_id=pos_id, txn_id=txn_id, refund_id=refund_id,
                             member_id=member_id, points=points, balance_after=balance_after,
                             lines=json.dumps(dict(returned), sort_keys=True), created_at=now,
                             detail=json.dumps(dict(detail or {}), sort_keys=True)))
                s.execute(update(Sale).where(Sale.pos_id == pos_id, Sale.txn_id == txn_id)
                          .values(status="refunded"))
        except IntegrityError as exc:
            with self.session() as s:
                prior = self._prior_refund(s, pos_id, txn_id, refund_id)
            if prior is None:
                raise StoreError(f"could not record refund {refund_id}: {exc.orig}") from exc
            return prior
        except OperationalError as exc:
            raise StoreError(f"could not record refund {refund_id}: {exc.orig}") from exc
        return RefundRecord(pos_id, txn_id, refund_id, member_id, points, balance_after)

    def members_with_lots(self) -> list[str]:
        """Members whose engine state holds points lots (the only ones expiry can touch)."""
        with self._translated("listing members for expiry"), self.engine.connect() as conn:
            return list(conn.execute(select(Member.member_id).where(
                Member.state.contains('"lots"')).order_by(Member.member_id)).scalars())

    def apply_entries(self, member_after: MemberView, entries: Sequence[LedgerEntry],
                      now: datetime) -> int:
        """Write a member's own ledger entries (expiry) and state; skips refs already in the
        ledger, so a run repeated after a crash writes nothing twice. Returns points moved."""
        member_id = member_after.member_id
        with self._translated(f"expiry for member {member_id}"), \
                self.session() as s, s.begin():
            refs = [fit_ref(e.ref) for e in entries]
            seen = set(s.scalars(select(LedgerEvent.txn_ref).where(
                LedgerEvent.member_id == member_id, LedgerEvent.txn_ref.in_(refs))))
            fresh = [e for e in entries
                     if fit_ref(e.ref) not in seen and e.member_id == member_id]
            points = sum(e.points for e in fresh)
            if self._write_member(s, member_id, points, member_after) is None:
                raise StoreError(f"unknown member {member_id}")
            self._write_entries(s, fresh, now)
        return points

    def offline_redemption(self, member_id: str, points: int, now: datetime,
                           policy: OfflinePolicy) -> RedeemDecision | None:
        """The offline policy's answer for redeeming ``points`` at the till, or None when
        this terminal is not enrolled with central (a standalone store has no cap).

        Read-only: the redemption itself is written with the sale at the commit.
        """
        with self._translated(f"checking redemption for {member_id}"), \
                self.engine.connect() as conn:
            state = conn.execute(select(TerminalState.server_url,
                                        TerminalState.last_sync_at)).first()
            synced_at = conn.execute(select(Member.balance_synced_at).where(
                Member.member_id == member_id)).scalar_one_or_none()
            balance = conn.execute(select(Member.balance).where(
                Member.member_id == member_id)).scalar_one_or_none()
        if state is None or state.server_url is None:
            return None
        return decide_redeem(
            policy, points=points, balance=int(balance or 0),
            synced_at=None if synced_at is None else state.last_sync_at, now=now,
            member_pending=self.pending_redeemed(member_id),
            terminal_pending=self.pending_redeemed())

    # -- sync --------------------------------------------------------------------------------
    # Used by pos_loyalty.sync (push the ledger outbox, apply pulled deltas, enrollment) and
    # by the till for offline-bounded redemption. These writers take SQLite's write lock up
    # front (BEGIN IMMEDIATE), so their own reads and writes are one atomic step.

    @contextmanager
    def _immediate(self) -> Iterator[Connection]:
        """One write transaction that holds SQLite's write lock from its first statement."""
        try:
            with self.engine.connect() as raw:
                conn = raw.execution_options(isolation_level="AUTOCOMMIT")
                sqlite = conn.dialect.name == "sqlite"
                conn.exec_driver_sql("BEGIN IMMEDIATE" if sqlite else "BEGIN")
                try:
                    yield conn
                except BaseException:
                    conn.exec_driver_sql("ROLLBACK")
                    raise
                conn.exec_driver_sql("COMMIT")
        except SQLAlchemyError as exc:
            raise StoreError(f"local store write failed: {exc}") from exc

    def sync_identity(self) -> SyncIdentity:
        """Who this terminal is to central, and where central is (None before enrollment)."""
        with self.session() as s:
            st = s.get(TerminalState, 1)
            assert st is not None
            return SyncIdentity(st.terminal_id, st.store_id, st.server_url, st.credential,
                                st.clock_offset_ms, st.last_sync_at)

    def set_enrollment(self, *, server_url: str, terminal_id: str, store_id: str,
                       credential: str) -> None:
        """Record the credential from enrollment and take the terminal id central assigned.

        Events not yet pushed are renamed to the new id (central has never seen them); a
        store whose events were already acked under another id cannot be re-enrolled.
        """
        with self._immediate() as conn:
            old = conn.execute(select(TerminalState.terminal_id)).scalar_one()
            if old != terminal_id:
                acked = conn.execute(select(func.count()).select_from(LedgerEvent).where(
                    LedgerEvent.acked.is_(True), LedgerEvent.terminal_id == old)).scalar_one()
                if acked:
                    raise StoreError(
                        f"this store already synced {acked} events as terminal {old}; "
                        f"use a fresh local database for terminal {terminal_id}")
                conn.execute(update(LedgerEvent).where(LedgerEvent.acked.is_(False))
                             .values(terminal_id=terminal_id))
            conn.execute(update(TerminalState).where(TerminalState.id == 1).values(
                terminal_id=terminal_id, store_id=store_id, server_url=server_url,
                credential=credential, pull_cursor="{}"))
        self.terminal_id = terminal_id

    def pending_events(self, limit: int = 1000) -> list[PendingEvent]:
        """The oldest ledger events central has not acknowledged, in terminal_seq order."""
        stmt = (select(LedgerEvent.event_id, LedgerEvent.terminal_id, LedgerEvent.terminal_seq,
                       LedgerEvent.member_id, LedgerEvent.kind, LedgerEvent.points,
                       LedgerEvent.txn_ref, LedgerEvent.terminal_time, LedgerEvent.offline)
                .where(LedgerEvent.acked.is_(False))
                .order_by(LedgerEvent.terminal_seq).limit(limit))
        with self.engine.connect() as conn:
            return [PendingEvent(*row) for row in conn.execute(stmt)]

    def pending_count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(LedgerEvent)
                                    .where(LedgerEvent.acked.is_(False))).scalar_one())

    def mark_acked(self, event_ids: Sequence[str]) -> int:
        """Mark events acknowledged by central (call only with ids from central's answer)."""
        if not event_ids:
            return 0
        done = 0
        with self._immediate() as conn:
            for i in range(0, len(event_ids), 500):
                done += conn.execute(update(LedgerEvent).where(
                    LedgerEvent.event_id.in_(event_ids[i:i + 500])).values(acked=True)).rowcount
        return done

    def pull_cursors(self) -> dict[str, str]:
        with self.session() as s:
            st = s.get(TerminalState, 1)
            assert st is not None
            cursors: dict[str, str] = json.loads(st.pull_cursor or "{}")
            return cursors

    def apply_pull(self, entity: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                   after: str, now: datetime) -> int:
        """Apply one pulled page and advance that entity's cursor in the same transaction.

        Balances are set to central's balance plus this terminal's own events central has
        not acknowledged yet (the worker pulls only after a complete push, so none of those
        can be counted in central's figure already).
        """
        want = _PULL_COLUMNS.get(entity)
        if want is None or tuple(columns) != want:
            raise StoreError(f"unexpected pull page for {entity}: columns {list(columns)}")
        stamp = now.isoformat(sep=" ", timespec="microseconds")
        with self._immediate() as conn:
            if rows:
                self._apply_rows(conn, entity, rows, stamp)
            st = conn.execute(select(TerminalState.pull_cursor)).scalar_one()
            cursors = json.loads(st or "{}")
            cursors[entity] = after
            conn.execute(update(TerminalState).where(TerminalState.id == 1)
                         .values(pull_cursor=json.dumps(cursors, sort_keys=True)))
        return len(rows)

    @staticmethod
    def _apply_rows(conn: Connection, entity: str, rows: Sequence[Sequence[Any]],
                    stamp: str) -> None:
        x = conn.exec_driver_sql
        if entity == "members":
            x("INSERT INTO members (member_id, display_name, tier, birthday, balance, "
              "lifetime_spend, visits, balance_synced_at) VALUES (?, ?, ?, ?, 0, 0, 0, ?) "
              "ON CONFLICT(member_id) DO UPDATE SET display_name = excluded.display_name, "
              "tier = excluded.tier, birthday = excluded.birthday",
              [(r[0], r[1] or "", r[2], r[3], stamp) for r in rows])
        elif entity == "cards":
            cards = [(r[0], r[1], r[2].upper() if r[2] else None, r[3]) for r in rows]
            upsert = ("INSERT INTO cards (card_id, member_id, uid, status) VALUES (?, ?, ?, ?) "
                      "ON CONFLICT(card_id) DO UPDATE SET member_id = excluded.member_id, "
                      "uid = excluded.uid, status = excluded.status")
            x("SAVEPOINT cards_page")
            try:
                x(upsert, cards)
            except IntegrityError:
                # a card names a member central has not sent (yet): keep the card anyway
                x("ROLLBACK TO cards_page")
                x("INSERT OR IGNORE INTO members (member_id, display_name, balance, "
                  "lifetime_spend, visits) VALUES (?, '', 0, 0, 0)", [(c[1],) for c in cards])
                x(upsert, cards)
            x("RELEASE cards_page")
        elif entity == "balances":
            pending: dict[str, int] = dict(conn.exec_driver_sql(
                "SELECT member_id, SUM(points) FROM ledger_events WHERE acked = 0 "
                "GROUP BY member_id").all())
            x("UPDATE members SET balance = ?, balance_synced_at = ? WHERE member_id = ?",
              [(int(r[1]) + int(pending.get(r[0], 0)), stamp, r[0]) for r in rows])
        elif entity == "tiers":
            x("INSERT INTO tiers (tier_id, name, body) VALUES (?, ?, ?) ON CONFLICT(tier_id) "
              "DO UPDATE SET name = excluded.name, body = excluded.body",
              [tuple(r) for r in rows])
        elif entity == "programs":
            x("INSERT INTO programs (program_id, store_id, name, body, version) "
              "VALUES (?, ?, ?, ?, ?) ON CONFLICT(program_id) DO UPDATE SET "
              "store_id = excluded.store_id, name = excluded.name, body = excluded.body, "
              "version = excluded.version", [tuple(r) for r in rows])
        elif entity == "sun_counters":
            sun_counters.apply_pulled(conn, rows)

    def bulk_load_indexes(self, *, present: bool) -> None:
        """Drop (``present=False``) or restore the cards' secondary indexes.

        A first bootstrap loads every card at once; building the UID index once, sorted,
        is much cheaper than inserting a million random UIDs into it. Restoring is
        idempotent, and the sync client restores at the start of every round, so a bootstrap
        interrupted by a crash cannot leave the store without its indexes.
        """
        table = Base.metadata.tables["cards"]
        try:
            with self.engine.begin() as conn:
                for index in sorted(table.indexes, key=lambda i: str(i.name)):
                    if index.unique:
                        continue
                    if present:
                        index.create(conn, checkfirst=True)
                    else:
                        index.drop(conn, checkfirst=True)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot change local indexes: {exc}") from exc

    def record_sync(self, *, now: datetime, clock_offset_ms: int | None = None,
                    pulled: bool = True) -> None:
        """Note a completed sync round (its time confirms every cached balance)."""
        values: dict[str, Any] = {}
        if pulled:
            values["last_sync_at"] = now
        if clock_offset_ms is not None:
            values["clock_offset_ms"] = clock_offset_ms
        if values:
            with self._immediate() as conn:
                conn.execute(update(TerminalState).where(TerminalState.id == 1).values(values))

    def pending_redeemed(self, member_id: str | None = None) -> int:
        """Points redeemed here that central has not acknowledged (one member, or all)."""
        stmt = select(func.coalesce(func.sum(-LedgerEvent.points), 0)).where(
            LedgerEvent.acked.is_(False), LedgerEvent.points < 0)
        if member_id is not None:
            stmt = stmt.where(LedgerEvent.member_id == member_id)
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def redeem(self, *, pos_id: str, txn_id: str, member_id: str, points: int, now: datetime,
               policy: OfflinePolicy) -> RedeemResult:
        """Redeem points within the offline policy; idempotent per (pos_id, txn_id).

        Writes a ``redeem`` ledger event (negative points) and lowers the cached balance in
        one transaction, or refuses with a cashier-readable reason and writes nothing.
        """
        txn_ref = f"{pos_id}/{txn_id}/redeem"
        with self._immediate() as conn:
            prior = conn.execute(select(LedgerEvent.points).where(
                LedgerEvent.txn_ref == txn_ref, LedgerEvent.member_id == member_id)).first()
            member = conn.execute(select(Member.balance, Member.balance_synced_at).where(
                Member.member_id == member_id)).first()
            if member is None:
                raise StoreError(f"unknown member {member_id}")
            if prior is not None:
                return RedeemResult(True, "already redeemed", -int(prior[0]),
                                    int(member[0]), repeated=True)
            # a member central has sent is confirmed as of the last complete sync round
            last_sync = conn.execute(select(TerminalState.last_sync_at)).scalar_one()
            synced = None if member[1] is None else last_sync
            pend = select(func.coalesce(func.sum(-LedgerEvent.points), 0)).where(
                LedgerEvent.acked.is_(False), LedgerEvent.points < 0)
            decision = decide_redeem(
                policy, points=points, balance=int(member[0]), synced_at=synced, now=now,
                member_pending=int(conn.execute(
                    pend.where(LedgerEvent.member_id == member_id)).scalar_one()),
                terminal_pending=int(conn.execute(pend).scalar_one()))
            if not decision.allowed:
                return RedeemResult(False, decision.reason, 0, int(member[0]))
            seq = conn.execute(
                update(TerminalState).where(TerminalState.id == 1)
                .values(next_seq=TerminalState.next_seq + 1).returning(TerminalState.next_seq)
            ).scalar_one() - 1
            terminal_id = conn.execute(select(TerminalState.terminal_id)).scalar_one()
            conn.execute(insert(LedgerEvent).values(
                event_id=str(uuid7()), terminal_id=terminal_id, terminal_seq=seq,
                member_id=member_id, kind="redeem", points=-points, txn_ref=txn_ref,
                terminal_time=now, offline=True, acked=False))
            balance = conn.execute(
                update(Member).where(Member.member_id == member_id)
                .values(balance=Member.balance - points).returning(Member.balance)
            ).scalar_one()
        return RedeemResult(True, "ok", points, int(balance))


TXN_REF_MAX = 140  # ledger_events.txn_ref here and at central


def fit_ref(ref: str) -> str:
    """A ledger reference within TXN_REF_MAX: long ones (64-character pos, txn and refund
    ids) keep their start and end in a digest, so they stay distinct and stable."""
    if len(ref) <= TXN_REF_MAX:
        return ref
    digest = hashlib.sha256(ref.encode()).hexdigest()[:32]
    return f"{ref[:TXN_REF_MAX - 33]}#{digest}"


@dataclass(frozen=True)
class StoredSale:
    """A committed sale as stored: its quote (``Quote.to_dict``) and its refunds so far."""

    pos_id: str
    txn_id: str
    member_id: str | None
    points: int
    balance_after: int
    quote: dict[str, Any] | None
    returned: dict[str, int]      # sku -> units refunded so far
    refunded_points: int          # signed sum of the refunds' points
    last_balance: int | None      # balance after the sale or its latest refund
    refunds: int


@dataclass(frozen=True)
class RefundRecord:
    """The answer to a refund; a repeated refund returns the stored one."""

    pos_id: str
    txn_id: str
    refund_id: str
    member_id: str | None
    points: int
    balance_after: int | None
    repeated: bool = False


@dataclass(frozen=True)
class SyncIdentity:
    """This terminal's enrollment as the sync worker needs it."""

    terminal_id: str
    store_id: str | None
    server_url: str | None
    credential: str | None
    clock_offset_ms: int
    last_sync_at: datetime | None


@dataclass(frozen=True)
class PendingEvent:
    """A ledger event waiting for central's acknowledgement."""

    event_id: str
    terminal_id: str
    terminal_seq: int
    member_id: str
    kind: str
    points: int
    txn_ref: str
    terminal_time: datetime
    offline: bool


@dataclass(frozen=True)
class RedeemResult:
    """The answer to a redemption: ``points`` redeemed (0 if refused) and balance after."""

    allowed: bool
    reason: str
    points: int
    balance_after: int
    repeated: bool = False


_PULL_COLUMNS: dict[str, tuple[str, ...]] = {
    "members": ("member_id", "display_name", "tier", "birthday", "status"),
    "cards": ("card_id", "member_id", "uid", "status"),
    "balances": ("member_id", "balance"),
    "tiers": ("tier_id", "name", "body"),
    "programs": ("program_id", "store_id", "name", "body", "version"),
    "sun_counters": sun_counters.PULL_COLUMNS,
}
