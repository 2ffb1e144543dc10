"""The central store: enrollment, authentication, ledger ingest, delta pull, reports.

One class over one SQLAlchemy engine (SQLite or PostgreSQL). HTTP routes and CLI commands are
thin layers over it. SQLAlchemy errors are translated to :class:`StoreError` here.

Change stamps (``change_xid``): on PostgreSQL the writing transaction's id
(``pg_current_xact_id()``); on SQLite a counter bumped inside the writing transaction. The
horizon of a pull is the oldest transaction id still running (PostgreSQL
``pg_snapshot_xmin(pg_current_snapshot())``, SQLite the committed counter + 1): every row
stamped below it is final, so a cursor (xid, key) never skips a row committed out of order.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Engine,
    Text,
    cast,
    create_engine,
    event,
    func,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry

from pos_loyalty.errors import AuthError, StoreError
from pos_loyalty.ids import uuid7
from pos_loyalty.store.central_models import (
    Balance,
    Card,
    ChangeClock,
    LedgerEvent,
    Member,
    Overdraft,
    Program,
    Store,
    SunCounter,
    Terminal,
    Tier,
)

log = logging.getLogger("pos_loyalty.server")

T = TypeVar("T")

KINDS = ("earn", "redeem", "reversal", "adjust", "expire")
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud over the phone
CENTRAL_TERMINAL = "central"


def utcnow() -> datetime:
    """Server time, naive UTC (the schema stores naive UTC everywhere)."""
    return datetime.now(UTC).replace(tzinfo=None)


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def normalize_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


@dataclass(frozen=True)
class TerminalAuth:
    """Who a valid credential belongs to."""

    terminal_id: str
    store_id: str


@dataclass(frozen=True)
class Enrollment:
    terminal_id: str
    store_id: str
    credential: str


@dataclass(frozen=True)
class EventIn:
    """One ledger event as a terminal pushes it (already validated for shape)."""

    event_id: str
    terminal_id: str
    terminal_seq: int
    member_id: str
    kind: str
    points: int
    txn_ref: str
    terminal_time: datetime  # naive UTC
    offline: bool = True


@dataclass(frozen=True)
class EventResult:
    event_id: str
    terminal_seq: int
    status: str  # "stored" or "duplicate"
    flags: str = ""


@dataclass(frozen=True)
class PushOutcome:
    results: list[EventResult]
    acked_seq: int
    server_time: datetime
    overdrafts: int = 0


@dataclass(frozen=True)
class EntitySpec:
    """How one pulled entity is read: table, key column and the columns sent."""

    model: Any
    key: str
    columns: tuple[str, ...]


ENTITIES: dict[str, EntitySpec] = {
    "members": EntitySpec(Member, "member_id",
                          ("member_id", "display_name", "tier", "birthday", "status")),
    "cards": EntitySpec(Card, "card_id", ("card_id", "member_id", "uid", "status")),
    "balances": EntitySpec(Balance, "member_id", ("member_id", "balance")),
    "tiers": EntitySpec(Tier, "tier_id", ("tier_id", "name", "body")),
    "programs": EntitySpec(Program, "program_id",
                           ("program_id", "store_id", "name", "body", "version")),
    "sun_counters": EntitySpec(SunCounter, "uid", ("uid", "counter")),
}


@dataclass(frozen=True)
class PullPage:
    entity: str
    columns: tuple[str, ...]
    rows: list[list[Any]]
    after: str  # cursor "xid:key" of the last row sent ("" if none yet)
    more: bool
    until: int


@dataclass
class OverdraftRow:
    member_id: str
    event_id: str
    terminal_id: str
    store_id: str
    points_short: int
    balance_after: int
    created_at: datetime
    balance_now: int = 0


@dataclass
class FlaggedRow:
    member_id: str
    event_id: str
    terminal_id: str
    terminal_time: datetime
    received_at: datetime
    flags: str


@dataclass
class ReconcileReport:
    overdrafts: list[OverdraftRow] = field(default_factory=list)
    flagged: list[FlaggedRow] = field(default_factory=list)


def parse_cursor(after: str) -> tuple[int, str] | None:
    """``"xid:key"`` -> (xid, key); ``""`` -> None. ValueError on anything else."""
    if after == "":
        return None
    xid_s, sep, key = after.partition(":")
    if not sep or not xid_s.isdigit() or len(xid_s) > 19:
        raise ValueError("cursor must look like '<xid>:<key>'")
    return int(xid_s), key


def _sqlite_setup(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # Take transaction control from pysqlite so a writer can BEGIN IMMEDIATE (below).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    # Writers lock up front, so a read-then-write never fails to upgrade its lock.
    mode = "IMMEDIATE" if conn.get_execution_options().get("writer") else "DEFERRED"
    conn.exec_driver_sql(f"BEGIN {mode}")


def make_central_engine(url: str) -> Engine:
    """An engine for the central database; SQLite gets WAL and explicit BEGIN handling."""
    try:
        engine = create_engine(url, pool_pre_ping=True)
    except (SQLAlchemyError, ValueError) as exc:
        raise StoreError(f"invalid database URL {url!r}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_setup)
        event.listen(engine, "begin", _sqlite_begin)
    elif engine.dialect.name != "postgresql":
        raise StoreError(f"central database must be SQLite or PostgreSQL, not {engine.name}")
    return engine


def _retryable(exc: DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return code in ("40001", "40P01")  # serialization failure, deadlock detected


class CentralStore:
    """The chain's source of truth, over SQLite (one shop) or PostgreSQL (a chain)."""

    def __init__(self, url: str, *, clock: Callable[[], datetime] = utcnow,
                 future_tolerance_s: int = 300) -> None:
        self.url = url
        self.engine = make_central_engine(url)
        self.is_pg = self.engine.dialect.name == "postgresql"
        self._writer = self.engine.execution_options(writer=True)
        self.clock = clock
        self.future_tolerance = timedelta(seconds=future_tolerance_s)
        dialect = postgresql if self.is_pg else sqlite
        self._insert = dialect.insert

    def close(self) -> None:
        self.engine.dispose()

    # -- transactions ----------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"central database error: {exc}") from exc

    def _write(self, fn: Callable[[Connection], T], *, attempts: int = 5) -> T:
        """Run ``fn`` in one transaction, retrying serialization failures and deadlocks."""
        for attempt in range(attempts):
            try:
                with self._writer.begin() as conn:
                    return fn(conn)
            except DBAPIError as exc:
                if attempt + 1 < attempts and _retryable(exc):
                    time.sleep(0.01 * (2 ** attempt) * (0.5 + secrets.randbelow(1000) / 1000))
                    continue
                if isinstance(exc, IntegrityError):
                    raise StoreError(f"refused by the database: {exc.orig}") from exc
                raise StoreError(f"central database error: {exc.orig}") from exc
            except SQLAlchemyError as exc:
                raise StoreError(f"central database error: {exc}") from exc
        raise AssertionError("unreachable")

    def _stamp(self, conn: Connection) -> ColumnElement[int] | int:
        """The change stamp for rows this transaction writes."""
        if self.is_pg:
            return cast(cast(func.pg_current_xact_id(), Text), BigInteger)
        return int(conn.execute(
            update(ChangeClock).where(ChangeClock.id == 1)
            .values(value=ChangeClock.value + 1).returning(ChangeClock.value)
        ).scalar_one())

    def horizon(self) -> int:
        """Every change stamped below this value is committed or gone for good."""
        with self._read() as conn:
            if self.is_pg:
                sql = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
                return int(conn.execute(text(sql)).scalar_one())
            return int(conn.execute(select(ChangeClock.value)).scalar_one()) + 1

    # -- stores, terminals, enrollment ----------------------------------------------------------

    def add_terminal(self, store_id: str, *, terminal_id: str | None = None,
                     ttl_s: int = 7 * 24 * 3600) -> tuple[str, str]:
        """Register a terminal of ``store_id``; returns (terminal_id, one-time code)."""
        raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(16))
        code = "-".join(raw[i:i + 4] for i in range(0, 16, 4))
        tid = terminal_id or f"T-{secrets.token_hex(4).upper()}"
        now = self.clock()

        def tx(conn: Connection) -> None:
            conn.execute(self._insert(Store).values(
                store_id=store_id, name=store_id, created_at=now,
            ).on_conflict_do_nothing(index_elements=[Store.store_id]))
            conn.execute(self._insert(Terminal).values(
                terminal_id=tid, store_id=store_id, status="pending",
                enroll_code_hash=_sha256(raw), enroll_expires_at=now + timedelta(seconds=ttl_s),
                created_at=now, acked_seq=0, clock_offset_ms=0))

        try:
            self._write(tx)
        except StoreError as exc:
            raise StoreError(f"cannot add terminal {tid}: {exc}") from exc
        log.info("terminal %s added to store %s", tid, store_id)
        return tid, code

    def enroll(self, code: str) -> Enrollment:
        """Exchange a one-time code for the terminal's credential (shown once, kept hashed)."""
        secret = secrets.token_urlsafe(32)
        now = self.clock()
        code_hash = _sha256(normalize_code(code))

        def tx(conn: Connection) -> tuple[str, str] | None:
            row = conn.execute(
                update(Terminal)
                .where(Terminal.enroll_code_hash == code_hash, Terminal.status == "pending",
                       Terminal.enroll_expires_at > now)
                .values(status="active", credential_hash=_sha256(secret),
                        enroll_code_hash=None, enrolled_at=now)
                .returning(Terminal.terminal_id, Terminal.store_id)
            ).first()
            return None if row is None else (row[0], row[1])

        found = self._write(tx)
        if found is None:
            log.warning("enrollment refused: unknown, used or expired code")
            raise AuthError("enrollment code unknown, already used or expired", status=403)
        log.info("terminal %s of store %s enrolled", *found)
        return Enrollment(found[0], found[1], f"{found[0]}.{secret}")

    def revoke_terminal(self, terminal_id: str) -> bool:
        """Revoke a terminal's credential (and any unused code); False if unknown."""
        now = self.clock()

        def tx(conn: Connection) -> int:
            return conn.execute(
                update(Terminal).where(Terminal.terminal_id == terminal_id)
                .values(status="revoked", revoked_at=now, enroll_code_hash=None)
            ).rowcount

        done = self._write(tx) > 0
        if done:
            log.warning("terminal %s revoked", terminal_id)
        return done

    def terminals(self) -> list[dict[str, Any]]:
        with self._read() as conn:
            rows = conn.execute(select(
                Terminal.terminal_id, Terminal.store_id, Terminal.status, Terminal.acked_seq,
                Terminal.last_seen_at, Terminal.clock_offset_ms,
            ).order_by(Terminal.store_id, Terminal.terminal_id)).mappings().all()
        return [dict(r) for r in rows]

    def authenticate(self, credential: str | None) -> TerminalAuth:
        """The terminal a bearer credential belongs to; AuthError (401/403) with a reason."""
        if not credential:
            raise AuthError("missing terminal credential (Authorization: Bearer ...)")
        terminal_id, sep, secret = credential.rpartition(".")
        if not sep or not terminal_id or not secret or len(credential) > 200:
            raise AuthError("malformed terminal credential")
        with self._read() as conn:
            row = conn.execute(
                select(Terminal.store_id, Terminal.status, Terminal.credential_hash)
                .where(Terminal.terminal_id == terminal_id)
            ).first()
        if row is None or row.credential_hash is None:
            raise AuthError("unknown terminal credential")
        if not hmac.compare_digest(row.credential_hash, _sha256(secret)):
            raise AuthError("invalid terminal credential")
        if row.status == "revoked":
            raise AuthError(f"terminal {terminal_id} has been revoked", status=403)
        if row.status != "active":
            raise AuthError(f"terminal {terminal_id} is not enrolled", status=403)
        return TerminalAuth(terminal_id, row.store_id)

    # -- members and catalogue (admin side) -------------------------------------------------

    def add_member(self, member_id: str, display_name: str = "", *, card_id: str | None = None,
                   uid: str | None = None, tier: str | None = None,
                   birthday: date | None = None) -> None:
        def tx(conn: Connection) -> None:
            stamp = self._stamp(conn)
            stmt = self._insert(Member).values(
                member_id=member_id, display_name=display_name, tier=tier, birthday=birthday,
                status="active", change_xid=stamp)
            conn.execute(stmt.on_conflict_do_update(
                index_elements=[Member.member_id],
                set_={"display_name": display_name, "tier": tier, "birthday": birthday,
                      "change_xid": stamp}))
            conn.execute(self._insert(Balance).values(
                member_id=member_id, balance=0, change_xid=stamp
            ).on_conflict_do_nothing(index_elements=[Balance.member_id]))
            if card_id is not None:
                conn.execute(self._insert(Card).values(
                    card_id=card_id, member_id=member_id, uid=uid.upper() if uid else None,
                    status="active", change_xid=stamp))

        self._write(tx)

    def set_card_status(self, card_id: str, status: str) -> bool:
        """Revoke (or re-activate) a card; terminals learn it on their next pull."""
        def tx(conn: Connection) -> int:
            return conn.execute(update(Card).where(Card.card_id == card_id).values(
                status=status, change_xid=self._stamp(conn))).rowcount

        return self._write(tx) > 0

    def set_tier(self, tier_id: str, name: str, body: str = "{}") -> None:
        def tx(conn: Connection) -> None:
            stamp = self._stamp(conn)
            conn.execute(self._insert(Tier).values(
                tier_id=tier_id, name=name, body=body, change_xid=stamp
            ).on_conflict_do_update(index_elements=[Tier.tier_id],
                                    set_={"name": name, "body": body, "change_xid": stamp}))

        self._write(tx)

    def set_program(self, program_id: str, name: str, body: str, *,
                    store_id: str | None = None) -> None:
        def tx(conn: Connection) -> None:
            stamp = self._stamp(conn)
            conn.execute(self._insert(Program).values(
                program_id=program_id, store_id=store_id, name=name, body=body, version=1,
                change_xid=stamp,
            ).on_conflict_do_update(index_elements=[Program.program_id], set_={
                "name": name, "body": body, "store_id": store_id,
                "version": Program.version + 1, "change_xid": stamp}))

        self._write(tx)

    def adjust_points(self, member_id: str, points: int, reason: str = "adjust") -> str:
        """A central adjustment (ledger event from terminal 'central'); returns its event id."""
        now = self.clock()
        ev = EventIn(event_id=str(uuid7()), terminal_id=CENTRAL_TERMINAL, terminal_seq=0,
                     member_id=member_id, kind="adjust", points=points, txn_ref=reason[:140],
                     terminal_time=now, offline=False)
        self._write(lambda conn: self._ingest_tx(conn, "central", "central", [ev], now, None))
        return ev.event_id

    def balance(self, member_id: str) -> int:
        with self._read() as conn:
            value = conn.execute(
                select(Balance.balance).where(Balance.member_id == member_id)).scalar()
        return int(value or 0)

    def ledger_sum(self, member_id: str) -> int:
        with self._read() as conn:
            value = conn.execute(select(func.coalesce(func.sum(LedgerEvent.points), 0))
                                 .where(LedgerEvent.member_id == member_id)).scalar_one()
        return int(value)

    def ledger_count(self, terminal_id: str | None = None) -> int:
        stmt = select(func.count()).select_from(LedgerEvent)
        if terminal_id is not None:
            stmt = stmt.where(LedgerEvent.terminal_id == terminal_id)
        with self._read() as conn:
            return int(conn.execute(stmt).scalar_one())

    # -- ledger ingest ----------------------------------------------------------------------

    def push(self, auth: TerminalAuth, events: Sequence[EventIn], *,
             clock_offset_ms: int | None = None) -> PushOutcome:
        """Insert a batch idempotently; balances move only for rows actually inserted.

        Every event must carry the credential's terminal_id (AuthError 403 otherwise): a
        terminal cannot write another's ledger.
        """
        for ev in events:
            if ev.terminal_id != auth.terminal_id:
                log.warning("push refused: terminal %s sent an event of terminal %s",
                            auth.terminal_id, ev.terminal_id)
                raise AuthError(
                    f"event {ev.event_id} belongs to terminal {ev.terminal_id}, "
                    f"not to {auth.terminal_id}", status=403)
        now = self.clock()
        return self._write(lambda conn: self._ingest_tx(
            conn, auth.terminal_id, auth.store_id, events, now, clock_offset_ms))

    def _ingest_tx(self, conn: Connection, terminal_id: str, store_id: str,
                   events: Sequence[EventIn], now: datetime,
                   clock_offset_ms: int | None) -> PushOutcome:
        horizon = now + self.future_tolerance
        rows = [{
            "member_id": ev.member_id, "event_id": ev.event_id, "terminal_id": ev.terminal_id,
            "store_id": store_id, "terminal_seq": ev.terminal_seq, "kind": ev.kind,
            "points": ev.points, "txn_ref": ev.txn_ref, "terminal_time": ev.terminal_time,
            "received_at": now, "offline": ev.offline,
            "flags": "future" if ev.terminal_time > horizon else "",
        } for ev in events]
        inserted: set[str] = set()
        if rows and self.is_pg:
            inserted = self._pg_insert_events(conn, rows)
        elif rows:
            stmt = (self._insert(LedgerEvent)
                    .on_conflict_do_nothing(index_elements=[LedgerEvent.member_id,
                                                            LedgerEvent.event_id])
                    .returning(LedgerEvent.event_id))
            inserted = set(conn.execute(stmt, rows).scalars())
        deltas: dict[str, int] = {}
        last_redeem: dict[str, EventIn] = {}
        for ev in events:
            if ev.event_id in inserted:
                deltas[ev.member_id] = deltas.get(ev.member_id, 0) + ev.points
                if ev.points < 0:
                    last_redeem[ev.member_id] = ev
        overdrafts = 0
        if deltas and self.is_pg:
            new_balances = self._pg_apply_deltas(conn, deltas)
        elif deltas:
            stamp = self._stamp(conn)
            ins = self._insert(Balance).values(change_xid=stamp)
            upsert = ins.on_conflict_do_update(
                index_elements=[Balance.member_id],
                set_={"balance": Balance.balance + ins.excluded.balance, "change_xid": stamp},
            ).returning(Balance.member_id, Balance.balance)
            # sorted: concurrent batches lock balance rows in one order, so no deadlock
            params = [{"member_id": m, "balance": deltas[m]} for m in sorted(deltas)]
            new_balances = {r[0]: r[1] for r in conn.execute(upsert, params)}
        if deltas:
            short_rows = []
            for member_id, redeem in last_redeem.items():
                new = int(new_balances[member_id])
                old = new - deltas[member_id]
                short = max(0, -new) - max(0, -old)
                if short > 0:
                    short_rows.append({
                        "member_id": member_id, "event_id": redeem.event_id,
                        "terminal_id": terminal_id, "store_id": store_id, "points_short": short,
                        "balance_after": new, "created_at": now, "resolved": False})
            if short_rows:
                conn.execute(self._insert(Overdraft).on_conflict_do_nothing(), short_rows)
                overdrafts = len(short_rows)
                for r in short_rows:
                    log.warning("overdraft: member %s short %d points after event %s of %s",
                                r["member_id"], r["points_short"], r["event_id"], terminal_id)
        acked = self._advance_terminal(conn, terminal_id, events, now, clock_offset_ms)
        results = [EventResult(ev.event_id, ev.terminal_seq,
                               "stored" if ev.event_id in inserted else "duplicate",
                               str(r["flags"])) for ev, r in zip(events, rows, strict=True)]
        return PushOutcome(results, acked, now, overdrafts)

    @staticmethod
    def _pg_insert_events(conn: Connection, rows: list[dict[str, Any]]) -> set[str]:
        """One statement for the whole batch: arrays in, ``unnest`` them, skip duplicates."""
        cols = ("member_id", "event_id", "terminal_id", "store_id", "terminal_seq", "kind",
                "points", "txn_ref", "terminal_time", "received_at", "offline", "flags")
        types = ("varchar", "varchar", "varchar", "varchar", "bigint", "varchar", "bigint",
                 "varchar", "timestamp", "timestamp", "boolean", "varchar")
        arrays = tuple([r[c] for r in rows] for c in cols)
        sql = (f"INSERT INTO ledger_events ({', '.join(cols)}) SELECT * FROM unnest("
               + ", ".join(f"%s::{t}[]" for t in types)
               + ") ON CONFLICT (member_id, event_id) DO NOTHING RETURNING event_id")
        return {r[0] for r in conn.exec_driver_sql(sql, arrays)}

    @staticmethod
    def _pg_apply_deltas(conn: Connection, deltas: dict[str, int]) -> dict[str, int]:
        """Add each member's delta; rows locked in member order so batches never deadlock."""
        members = sorted(deltas)
        sql = ("INSERT INTO balances (member_id, balance, change_xid) "
               "SELECT m, d, pg_current_xact_id()::text::bigint "
               "FROM unnest(%s::varchar[], %s::bigint[]) AS u(m, d) ORDER BY m "
               "ON CONFLICT (member_id) DO UPDATE SET balance = balances.balance + "
               "excluded.balance, change_xid = excluded.change_xid "
               "RETURNING member_id, balance")
        result = conn.exec_driver_sql(sql, (members, [deltas[m] for m in members]))
        return {r[0]: int(r[1]) for r in result}

    def _advance_terminal(self, conn: Connection, terminal_id: str, events: Sequence[EventIn],
                          now: datetime, clock_offset_ms: int | None) -> int:
        if terminal_id == CENTRAL_TERMINAL:
            return 0
        current = conn.execute(select(Terminal.acked_seq).where(
            Terminal.terminal_id == terminal_id).with_for_update()).scalar_one()
        acked = int(current)
        for seq in sorted(ev.terminal_seq for ev in events):
            if seq == acked + 1:
                acked = seq
            elif seq > acked + 1:
                break  # a gap: acked_seq stays below it until the missing events arrive
        values: dict[str, Any] = {"acked_seq": acked, "last_seen_at": now}
        if clock_offset_ms is not None:
            values["clock_offset_ms"] = clock_offset_ms
        conn.execute(update(Terminal).where(Terminal.terminal_id == terminal_id).values(values))
        return acked

    # -- delta pull -------------------------------------------------------------------------

    def pull(self, auth: TerminalAuth, entity: str, after: str, until: int,
             limit: int) -> PullPage:
        """Rows of ``entity`` changed after cursor ``after`` and stamped below ``until``."""
        spec = ENTITIES[entity]
        cursor = parse_cursor(after)
        until = min(until, self.horizon())
        model = spec.model
        key_col = getattr(model, spec.key)
        cols = [getattr(model, c) for c in spec.columns]
        stmt = select(model.change_xid, *cols).where(model.change_xid < until)
        if cursor is not None:
            stmt = stmt.where(tuple_(model.change_xid, key_col) > tuple_(*cursor))
        if entity == "programs":
            stmt = stmt.where(or_(Program.store_id.is_(None), Program.store_id == auth.store_id))
        stmt = stmt.order_by(model.change_xid, key_col).limit(limit + 1)
        with self._read() as conn:
            raw = conn.execute(stmt).all()
        more = len(raw) > limit
        raw = raw[:limit]
        key_index = spec.columns.index(spec.key) + 1
        rows = [[v.isoformat() if isinstance(v, date) else v for v in r[1:]] for r in raw]
        last = f"{raw[-1][0]}:{raw[-1][key_index]}" if raw else after
        return PullPage(entity, spec.columns, rows, last, more, until)

    def counts(self, until: int) -> dict[str, int]:
        """How many rows of each entity lie below ``until`` (a bootstrap's progress total)."""
        out: dict[str, int] = {}
        with self._read() as conn:
            for name, spec in ENTITIES.items():
                out[name] = int(conn.execute(select(func.count()).select_from(spec.model)
                                             .where(spec.model.change_xid < until)).scalar_one())
        return out

    # -- reports ----------------------------------------------------------------------------

    def reconcile(self, *, include_resolved: bool = False) -> ReconcileReport:
        """Overdrafts (redemptions below zero) and flagged events, for store IT to settle."""
        od = select(
            Overdraft.member_id, Overdraft.event_id, Overdraft.terminal_id, Overdraft.store_id,
            Overdraft.points_short, Overdraft.balance_after, Overdraft.created_at,
            func.coalesce(Balance.balance, 0),
        ).outerjoin(
            Balance, Balance.member_id == Overdraft.member_id)
        if not include_resolved:
            od = od.where(Overdraft.resolved.is_(False))
        flagged = select(LedgerEvent.member_id, LedgerEvent.event_id, LedgerEvent.terminal_id,
                         LedgerEvent.terminal_time, LedgerEvent.received_at,
                         LedgerEvent.flags).where(LedgerEvent.flags != "")
        report = ReconcileReport()
        with self._read() as conn:
            for o in conn.execute(od.order_by(Overdraft.created_at)).all():
                report.overdrafts.append(OverdraftRow(*o[:7], balance_now=int(o[7])))
            for f in conn.execute(flagged.order_by(LedgerEvent.received_at)).all():
                report.flagged.append(FlaggedRow(*f))
        return report


def bulk_rows(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Chunks of ``size`` from ``items`` (bounded memory for bulk loads)."""
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
