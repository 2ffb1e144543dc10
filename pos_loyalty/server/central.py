"""The central store: enrollment, authentication, ledger ingest, delta pull, reports.

Ingest checks every pushed event with the pure rules of :mod:`pos_loyalty.server.checks`
(what fails is stored held, not applied), answers repeated or changed ids as conflicts and
flags reused or skipped sequence numbers; a balance is always the sum of the member's
applied ledger rows (:meth:`CentralStore.integrity` checks it).

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
import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple, TypeVar

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
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry

from pos_loyalty.errors import AuthError, StoreError
from pos_loyalty.ids import uuid7
from pos_loyalty.server.checks import (
    REFUND_MARK,
    BatchState,
    EventPolicy,
    MemberFacts,
    SaleFacts,
    Verdict,
    check_event,
    note_sale,
    sale_ref,
)
from pos_loyalty.store.central_models import (
    Balance,
    Card,
    ChangeClock,
    LedgerEvent,
    Member,
    Overdraft,
    Program,
    ReviewItem,
    Store,
    StorePolicy,
    Terminal,
    Tier,
)

log = logging.getLogger("pos_loyalty.server")

T = TypeVar("T")

KINDS = ("earn", "redeem", "reversal", "adjust", "expire")
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud over the phone
CENTRAL_TERMINAL = "central"
MAX_INT64 = 2**63 - 1
BAD_CREDENTIAL = "invalid or missing terminal credential"  # one reason for every bad one


def utcnow() -> datetime:
    """Server time, naive UTC (the schema stores naive UTC everywhere)."""
    return datetime.now(UTC).replace(tzinfo=None)


def aware(value: datetime) -> datetime:
    """A naive UTC time as it goes out: with its offset, so no reader guesses the zone."""
    return value.replace(tzinfo=UTC)


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


class EventIn(NamedTuple):
    """One ledger event as a terminal pushes it (already validated for shape); a tuple,
    since a push makes thousands of them."""

    event_id: str
    terminal_id: str
    terminal_seq: int
    member_id: str
    kind: str
    points: int
    txn_ref: str
    terminal_time: datetime  # naive UTC
    offline: bool = True


def _content(ev: EventIn) -> tuple[Any, ...]:
    """What must match for a re-pushed event id to be the same event."""
    return (ev.member_id, ev.terminal_id, ev.terminal_seq, ev.kind, ev.points, ev.txn_ref,
            ev.terminal_time, ev.offline)


def _event_json(ev: EventIn) -> str:
    d = ev._asdict()
    d["terminal_time"] = ev.terminal_time.isoformat()
    return json.dumps(d, sort_keys=True)


class EventResult(NamedTuple):
    event_id: str
    terminal_seq: int
    status: str  # "stored", "held", "duplicate" or "conflict"
    flags: str = ""
    reason: str = ""


@dataclass(frozen=True)
class PushOutcome:
    results: list[EventResult]
    acked_seq: int
    server_time: datetime
    overdrafts: int = 0
    held: int = 0
    conflicts: int = 0


@dataclass(frozen=True)
class HeldRow:
    event_id: str
    member_id: str
    terminal_id: str
    store_id: str
    kind: str
    points: int
    txn_ref: str
    received_at: datetime
    reason: str


@dataclass(frozen=True)
class IntegrityRow:
    """A member whose cached balance is not the sum of its applied ledger rows."""

    member_id: str
    balance: int | None  # None: no balance row at all
    ledger_sum: int
    member_exists: bool


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
class ReviewRow:
    kind: str
    terminal_id: str
    store_id: str
    event_id: str
    detail: str
    created_at: datetime


@dataclass
class ReconcileReport:
    overdrafts: list[OverdraftRow] = field(default_factory=list)
    flagged: list[FlaggedRow] = field(default_factory=list)
    review: list[ReviewRow] = field(default_factory=list)


BIRTHDAY_YEAR = 2000  # a leap year, so 29 February survives


def _wire(column: str, value: Any) -> Any:
    """A pulled value as terminals get it. A birthday goes out as month and day only: the
    year is replaced by 2000 (terminals need the day for birthday offers, not the age)."""
    if column == "birthday" and isinstance(value, date):
        return value.replace(year=BIRTHDAY_YEAR).isoformat()
    return value.isoformat() if isinstance(value, date) else value


def parse_cursor(after: str) -> tuple[int, str] | None:
    """``"xid:key"`` -> (xid, key); ``""`` -> None. ValueError on anything else."""
    if after == "":
        return None
    xid_s, sep, key = after.partition(":")
    if not sep or not xid_s.isdigit() or len(xid_s) > 19:
        raise ValueError("cursor must look like '<xid>:<key>'")
    if int(xid_s) > MAX_INT64:
        raise ValueError(f"cursor xid must be at most {MAX_INT64}")
    return int(xid_s), key


def secure_sqlite_file(url: str) -> None:
    """Create a SQLite database file owner-only (0600) before anything opens it, and
    tighten an existing one; SQLite gives its -wal/-shm files the same mode."""
    try:
        parsed = make_url(url)
    except (ValueError, SQLAlchemyError):
        return
    path = parsed.database
    if parsed.get_backend_name() != "sqlite" or not path or path == ":memory:" \
            or path.startswith("file:"):
        return
    try:
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
        os.chmod(path, 0o600)
    except OSError as exc:
        raise StoreError(f"cannot create the central database {path}: {exc.strerror}") from exc


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


def _pg_binary(conn: Connection, sql: str, params: Sequence[Any], *,
               rows: bool = True) -> list[tuple[Any, ...]]:
    """Run ``sql`` on the transaction's psycopg connection with binary parameters (each
    ``%s`` becomes psycopg's binary placeholder ``%b``) and binary results.

    Arrays of a thousand values are the hot path of ingest; psycopg's text format scans
    every string for characters to quote, its binary format just copies them.
    """
    import psycopg

    raw: psycopg.Connection[Any] = conn.connection.driver_connection  # type: ignore[assignment]
    try:
        with raw.cursor(binary=True) as cur:
            cur.execute(sql.replace("%s", "%b"), params)
            return list(cur.fetchall()) if rows else []
    except psycopg.Error as exc:  # as SQLAlchemy would wrap it, so _write can retry
        raise DBAPIError.instance(sql, params, exc, psycopg.Error) from exc


def _retryable(exc: DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return code in ("40001", "40P01")  # serialization failure, deadlock detected


class CentralStore:
    """The chain's source of truth, over SQLite (one shop) or PostgreSQL (a chain)."""

    def __init__(self, url: str, *, clock: Callable[[], datetime] = utcnow,
                 future_tolerance_s: int = 300,
                 default_policy: EventPolicy | None = None) -> None:
        self.url = url
        secure_sqlite_file(url)
        self.engine = make_central_engine(url)
        self.default_policy = default_policy or EventPolicy()
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
            raise AuthError(BAD_CREDENTIAL)
        terminal_id, sep, secret = credential.rpartition(".")
        if not sep or not terminal_id or not secret or len(credential) > 200:
            raise AuthError(BAD_CREDENTIAL)
        with self._read() as conn:
            row = conn.execute(
                select(Terminal.store_id, Terminal.status, Terminal.credential_hash)
                .where(Terminal.terminal_id == terminal_id)
            ).first()
        if row is None or row.credential_hash is None:
            raise AuthError(BAD_CREDENTIAL)
        if not hmac.compare_digest(row.credential_hash, _sha256(secret)):
            raise AuthError(BAD_CREDENTIAL)
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
        """A central adjustment by store IT (ledger event of terminal 'central').

        Returns its event id; StoreError for a member central does not know.
        """
        now = self.clock()
        event_id = str(uuid7())

        def tx(conn: Connection) -> None:
            known = conn.execute(select(Member.member_id).where(
                Member.member_id == member_id)).first()
            if known is None:
                raise StoreError(f"unknown member {member_id}")
            conn.execute(self._insert(LedgerEvent).values(
                member_id=member_id, event_id=event_id, terminal_id=CENTRAL_TERMINAL,
                store_id=CENTRAL_TERMINAL, terminal_seq=0, kind="adjust", points=points,
                txn_ref=reason[:140], terminal_time=now, received_at=now, offline=False,
                flags="", status="applied", reason="", review_note=""))
            self._apply_deltas(conn, {member_id: points})

        self._write(tx)
        return event_id

    def balance(self, member_id: str) -> int:
        with self._read() as conn:
            value = conn.execute(
                select(Balance.balance).where(Balance.member_id == member_id)).scalar()
        return int(value or 0)

    def ledger_sum(self, member_id: str) -> int:
        """Sum of the member's applied ledger rows (held and rejected rows do not count)."""
        with self._read() as conn:
            value = conn.execute(select(func.coalesce(func.sum(LedgerEvent.points), 0))
                                 .where(LedgerEvent.member_id == member_id,
                                        LedgerEvent.status == "applied")).scalar_one()
        return int(value)

    def ledger_count(self, terminal_id: str | None = None) -> int:
        stmt = select(func.count()).select_from(LedgerEvent)
        if terminal_id is not None:
            stmt = stmt.where(LedgerEvent.terminal_id == terminal_id)
        with self._read() as conn:
            return int(conn.execute(stmt).scalar_one())

    # -- store policies ---------------------------------------------------------------------

    def policy(self, store_id: str) -> EventPolicy:
        """The store's event limits (the server defaults if store IT set none)."""
        with self._read() as conn:
            return self._policy(conn, store_id)

    def _policy(self, conn: Connection, store_id: str) -> EventPolicy:
        row = conn.execute(select(
            StorePolicy.max_event_points, StorePolicy.max_terminal_day_earn,
            StorePolicy.offline_member_cap, StorePolicy.offline_terminal_budget,
            StorePolicy.debit_other_stores).where(StorePolicy.store_id == store_id)).first()
        if row is None:
            return self.default_policy
        return EventPolicy(int(row[0]), int(row[1]), int(row[2]), int(row[3]), bool(row[4]))

    def set_policy(self, store_id: str, policy: EventPolicy) -> None:
        values = asdict(policy)

        def tx(conn: Connection) -> None:
            conn.execute(self._insert(StorePolicy).values(store_id=store_id, **values)
                         .on_conflict_do_update(index_elements=[StorePolicy.store_id],
                                                set_=values))

        self._write(tx)

    # -- ledger ingest ----------------------------------------------------------------------

    def push(self, auth: TerminalAuth, events: Sequence[EventIn], *,
             clock_offset_ms: int | None = None) -> PushOutcome:
        """Check and store a batch; balances move only for new events that pass every rule.

        Every event must carry the credential's terminal_id (AuthError 403 otherwise): a
        terminal cannot write another's ledger. Events failing a rule are stored held.
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
        term = conn.execute(select(
            Terminal.acked_seq, Terminal.max_seq, Terminal.earn_day, Terminal.earn_day_points,
        ).where(Terminal.terminal_id == terminal_id).with_for_update()).one()
        results: list[EventResult | None] = [None] * len(events)
        reviews: list[dict[str, Any]] = []

        def review(kind: str, ev: EventIn, detail: str) -> None:
            reviews.append({"item_id": str(uuid7()), "kind": kind, "terminal_id": terminal_id,
                            "store_id": store_id, "event_id": ev.event_id, "detail": detail,
                            "created_at": now, "resolved": False})

        # 1. ids: a repeat inside the batch, or a known id with other content, is a conflict
        first: dict[str, int] = {}
        for i, ev in enumerate(events):
            if ev.event_id in first:
                results[i] = EventResult(ev.event_id, ev.terminal_seq, "conflict", "",
                                         "event_id repeated inside the batch")
                review("conflict", ev, "repeated inside one push: " + _event_json(ev))
            else:
                first[ev.event_id] = i
        known = self._known_events(conn, list(first))
        new: list[int] = []
        for event_id, i in first.items():
            ev = events[i]
            old = known.get(event_id)
            if old is None:
                new.append(i)
            elif old == _content(ev):
                results[i] = EventResult(event_id, ev.terminal_seq, "duplicate")
            else:
                results[i] = EventResult(event_id, ev.terminal_seq, "conflict", "",
                                         "event_id already stored with other content")
                review("conflict", ev, "known id, other content: " + _event_json(ev))
        # 2. sequence: a number another event already holds, or a jump, is flagged
        max_seq = int(term.max_seq)
        low = [events[i].terminal_seq for i in new if events[i].terminal_seq <= max_seq]
        taken = self._taken_seqs(conn, terminal_id, low) if low else set()
        horizon = now + self.future_tolerance
        stale = now - timedelta(days=365)
        clock_off = clock_offset_ms is not None and \
            abs(clock_offset_ms) > self.future_tolerance.total_seconds() * 1000
        flags: dict[int, str] = {}
        for i in new:
            ev = events[i]
            f: list[str] = []
            if ev.terminal_seq in taken:
                f.append("seq_reuse")
                review("seq_reuse", ev, f"terminal_seq {ev.terminal_seq} already used by "
                       "another event: " + _event_json(ev))
            elif ev.terminal_seq > max_seq + 1:
                f.append("seq_gap")
                review("seq_gap", ev, f"terminal_seq jumped from {max_seq} to "
                       f"{ev.terminal_seq}: " + _event_json(ev))
            taken.add(ev.terminal_seq)
            max_seq = max(max_seq, ev.terminal_seq)
            if ev.terminal_time > horizon:
                f.append("future")
            if clock_off or ev.terminal_time < stale:
                f.append("clock")
            flags[i] = ",".join(f)
        # 3. the rules, in batch order, over what central knows of these members
        day = now.date()
        state = self._batch_state(conn, terminal_id, store_id, [events[i] for i in new],
                                  int(term.earn_day_points) if term.earn_day == day else 0)
        rows: list[dict[str, Any]] = []
        verdicts: dict[str, Verdict] = {}
        for i in new:
            ev = events[i]
            verdict = check_event(ev, state)
            if verdict.status == "applied":
                note_sale(state, ev)
            verdicts[ev.event_id] = verdict
            rows.append({
                "member_id": ev.member_id, "event_id": ev.event_id, "terminal_id": terminal_id,
                "store_id": store_id, "terminal_seq": ev.terminal_seq, "kind": ev.kind,
                "points": ev.points, "txn_ref": ev.txn_ref, "terminal_time": ev.terminal_time,
                "received_at": now, "offline": ev.offline, "flags": flags[i],
                "status": verdict.status, "reason": verdict.reason})
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
        short_rows = []
        held = 0
        for i in new:
            ev = events[i]
            verdict = verdicts[ev.event_id]
            if ev.event_id not in inserted:  # a concurrent push stored it first
                results[i] = EventResult(ev.event_id, ev.terminal_seq, "duplicate")
                continue
            if verdict.status == "held":
                held += 1
                results[i] = EventResult(ev.event_id, ev.terminal_seq, "held", flags[i],
                                         verdict.reason)
                log.warning("held event %s of terminal %s for member %s (%s %d): %s",
                            ev.event_id, terminal_id, ev.member_id, ev.kind, ev.points,
                            verdict.reason)
                continue
            results[i] = EventResult(ev.event_id, ev.terminal_seq, "stored", flags[i])
            deltas[ev.member_id] = deltas.get(ev.member_id, 0) + ev.points
            if verdict.short > 0:
                short_rows.append({
                    "member_id": ev.member_id, "event_id": ev.event_id,
                    "terminal_id": terminal_id, "store_id": store_id,
                    "points_short": verdict.short, "balance_after": verdict.balance_after,
                    "created_at": now, "resolved": False})
        if deltas:
            self._apply_deltas(conn, deltas)
        if short_rows:
            conn.execute(self._insert(Overdraft).on_conflict_do_nothing(), short_rows)
            for r in short_rows:
                log.warning("overdraft: member %s short %d points after event %s of %s",
                            r["member_id"], r["points_short"], r["event_id"], terminal_id)
        if reviews:
            conn.execute(self._insert(ReviewItem), reviews)
            for r in reviews:
                log.warning("for review: %s, event %s of terminal %s", r["kind"],
                            r["event_id"], terminal_id)
        final = [r for r in results if r is not None]
        acked = self._advance_terminal(conn, terminal_id, int(term.acked_seq), final, now,
                                       clock_offset_ms, max_seq=max_seq, day=day,
                                       day_earned=state.day_earned)
        return PushOutcome(final, acked, now, len(short_rows), held,
                           sum(1 for r in final if r.status == "conflict"))

    def _known_events(self, conn: Connection, event_ids: list[str]) -> dict[str, tuple[Any, ...]]:
        """The stored content of those of ``event_ids`` central already holds."""
        if not event_ids:
            return {}
        cols = (LedgerEvent.event_id, LedgerEvent.member_id, LedgerEvent.terminal_id,
                LedgerEvent.terminal_seq, LedgerEvent.kind, LedgerEvent.points,
                LedgerEvent.txn_ref, LedgerEvent.terminal_time, LedgerEvent.offline)
        if self.is_pg:
            sql = ("SELECT event_id, member_id, terminal_id, terminal_seq, kind, points, "
                   "txn_ref, terminal_time, offline FROM ledger_events "
                   "WHERE event_id = ANY(%s::varchar[])")
            found = _pg_binary(conn, sql, (event_ids,))
        else:
            found = [tuple(r) for r in conn.execute(
                select(*cols).where(LedgerEvent.event_id.in_(event_ids)))]
        return {str(r[0]): tuple(r[1:]) for r in found}

    def _taken_seqs(self, conn: Connection, terminal_id: str, seqs: list[int]) -> set[int]:
        found = conn.execute(select(LedgerEvent.terminal_seq).where(
            LedgerEvent.terminal_id == terminal_id, LedgerEvent.terminal_seq.in_(seqs))).scalars()
        return {int(s) for s in found}

    def _batch_state(self, conn: Connection, terminal_id: str, store_id: str,
                     events: list[EventIn], day_earned: int) -> BatchState:
        """Load what the rules need: only debited members' balances, stores and overdrafts."""
        policy = self._policy(conn, store_id)
        member_ids = sorted({ev.member_id for ev in events})
        if not member_ids:
            return BatchState(policy, store_id, day_earned, 0, {})
        known: Iterable[str]
        if self.is_pg:
            known = (r[0] for r in _pg_binary(
                conn, "SELECT member_id FROM members WHERE member_id = ANY(%s::varchar[])",
                (member_ids,)))
        else:
            known = conn.execute(select(Member.member_id).where(
                Member.member_id.in_(member_ids))).scalars()
        members = {str(m): MemberFacts() for m in known}
        debited = sorted({ev.member_id for ev in events
                          if ev.points < 0 and ev.member_id in members})
        terminal_overdraft = 0
        if debited:
            for m, bal in conn.execute(select(Balance.member_id, Balance.balance).where(
                    Balance.member_id.in_(debited)).order_by(Balance.member_id)
                    .with_for_update()).all():
                members[m].balance = int(bal)
            for m, s in conn.execute(select(LedgerEvent.member_id, LedgerEvent.store_id).where(
                    LedgerEvent.member_id.in_(debited), LedgerEvent.status == "applied",
                    LedgerEvent.terminal_id != CENTRAL_TERMINAL).distinct()).all():
                members[m].stores.add(str(s))
            open_od = select(Overdraft.member_id, func.sum(Overdraft.points_short)).where(
                Overdraft.terminal_id == terminal_id, Overdraft.resolved.is_(False)
            ).group_by(Overdraft.member_id)
            for m, short in conn.execute(open_od).all():
                terminal_overdraft += int(short)
                if m in members:
                    members[m].overdraft_here = int(short)
        state = BatchState(policy, store_id, day_earned, terminal_overdraft, members)
        refs = {(ev.member_id, ref) for ev in events if ev.kind == "reversal"
                and ev.member_id in members and (ref := sale_ref(ev.txn_ref))}
        for member_id, ref in sorted(refs):
            sale = state.sales.setdefault((member_id, ref), SaleFacts())
            for kind, txn_ref, points in conn.execute(select(
                    LedgerEvent.kind, LedgerEvent.txn_ref, LedgerEvent.points).where(
                    LedgerEvent.member_id == member_id, LedgerEvent.status == "applied",
                    or_(LedgerEvent.txn_ref == ref, LedgerEvent.txn_ref == ref + "/redeem",
                        LedgerEvent.txn_ref.startswith(ref + REFUND_MARK)))).all():
                if kind == "earn" and txn_ref == ref:
                    sale.earned += int(points)
                elif kind == "redeem":
                    sale.redeemed += -int(points)
                elif kind == "reversal" and int(points) > 0:
                    sale.recredited += int(points)
        return state

    def _apply_deltas(self, conn: Connection, deltas: dict[str, int]) -> None:
        """Add each member's delta to its balance, rows locked in member order."""
        if self.is_pg:
            self._pg_apply_deltas(conn, deltas)
            return
        stamp = self._stamp(conn)
        ins = self._insert(Balance).values(change_xid=stamp)
        upsert = ins.on_conflict_do_update(
            index_elements=[Balance.member_id],
            set_={"balance": Balance.balance + ins.excluded.balance, "change_xid": stamp},
        )
        # sorted: concurrent batches lock balance rows in one order, so no deadlock
        conn.execute(upsert, [{"member_id": m, "balance": deltas[m]} for m in sorted(deltas)])

    @staticmethod
    def _pg_insert_events(conn: Connection, rows: list[dict[str, Any]]) -> set[str]:
        """One statement for the whole batch: arrays in, ``unnest`` them, skip duplicates."""
        cols = ("member_id", "event_id", "terminal_id", "store_id", "terminal_seq", "kind",
                "points", "txn_ref", "terminal_time", "received_at", "offline", "flags",
                "status", "reason")
        types = ("varchar", "varchar", "varchar", "varchar", "bigint", "varchar", "bigint",
                 "varchar", "timestamp", "timestamp", "boolean", "varchar", "varchar",
                 "varchar")
        arrays = tuple([r[c] for r in rows] for c in cols)
        sql = (f"INSERT INTO ledger_events ({', '.join(cols)}) SELECT * FROM unnest("
               + ", ".join(f"%s::{t}[]" for t in types)
               + ") ON CONFLICT (member_id, event_id) DO NOTHING RETURNING event_id")
        return {r[0] for r in _pg_binary(conn, sql, arrays)}

    @staticmethod
    def _pg_apply_deltas(conn: Connection, deltas: dict[str, int]) -> None:
        """Add each member's delta; rows locked in member order so batches never deadlock."""
        members = sorted(deltas)
        sql = ("INSERT INTO balances (member_id, balance, change_xid) "
               "SELECT m, d, pg_current_xact_id()::text::bigint "
               "FROM unnest(%s::varchar[], %s::bigint[]) AS u(m, d) ORDER BY m "
               "ON CONFLICT (member_id) DO UPDATE SET balance = balances.balance + "
               "excluded.balance, change_xid = excluded.change_xid")
        _pg_binary(conn, sql, (members, [deltas[m] for m in members]), rows=False)

    def _advance_terminal(self, conn: Connection, terminal_id: str, acked: int,
                          results: Sequence[EventResult], now: datetime,
                          clock_offset_ms: int | None, *, max_seq: int, day: date,
                          day_earned: int) -> int:
        """Move acked_seq over the contiguous sequence numbers now answered; record the
        highest sequence, the day's earned points, last contact and clock offset."""
        for seq in sorted(r.terminal_seq for r in results):
            if seq == acked + 1:
                acked = seq
            elif seq > acked + 1:
                break  # a gap: acked_seq stays below it until the missing events arrive
        values: dict[str, Any] = {"acked_seq": acked, "last_seen_at": now, "max_seq": max_seq,
                                  "earn_day": day, "earn_day_points": day_earned}
        if clock_offset_ms is not None:
            values["clock_offset_ms"] = clock_offset_ms
        conn.execute(update(Terminal).where(Terminal.terminal_id == terminal_id).values(values))
        return acked

    # -- held events and review (store IT) --------------------------------------------------

    def held(self, store_id: str | None = None) -> list[HeldRow]:
        """Events stored but not applied, waiting for store IT, oldest first."""
        stmt = select(LedgerEvent.event_id, LedgerEvent.member_id, LedgerEvent.terminal_id,
                      LedgerEvent.store_id, LedgerEvent.kind, LedgerEvent.points,
                      LedgerEvent.txn_ref, LedgerEvent.received_at, LedgerEvent.reason,
                      ).where(LedgerEvent.status == "held")
        if store_id is not None:
            stmt = stmt.where(LedgerEvent.store_id == store_id)
        with self._read() as conn:
            return [HeldRow(*r) for r in conn.execute(stmt.order_by(LedgerEvent.received_at))]

    def resolve_held(self, event_id: str, *, release: bool, note: str) -> HeldRow:
        """Release (apply now) or reject (never apply) a held event, with store IT's reason."""
        now = self.clock()
        if not note.strip():
            raise StoreError("a reason is required to release or reject a held event")

        def tx(conn: Connection) -> HeldRow:
            row = conn.execute(select(
                LedgerEvent.event_id, LedgerEvent.member_id, LedgerEvent.terminal_id,
                LedgerEvent.store_id, LedgerEvent.kind, LedgerEvent.points,
                LedgerEvent.txn_ref, LedgerEvent.received_at, LedgerEvent.reason,
            ).where(LedgerEvent.event_id == event_id, LedgerEvent.status == "held")
              .with_for_update()).first()
            if row is None:
                raise StoreError(f"no held event {event_id}")
            held = HeldRow(*row)
            if release:
                known = conn.execute(select(Member.member_id).where(
                    Member.member_id == held.member_id)).first()
                if known is None:
                    raise StoreError(f"member {held.member_id} does not exist; add the member "
                                     "before releasing its events")
            conn.execute(update(LedgerEvent).where(
                LedgerEvent.member_id == held.member_id, LedgerEvent.event_id == event_id
            ).values(status="applied" if release else "rejected", reviewed_at=now,
                     review_note=note[:200]))
            if release:
                self._apply_deltas(conn, {held.member_id: held.points})
            return held

        held = self._write(tx)
        log.warning("held event %s %s by store IT: %s", event_id,
                    "released" if release else "rejected", note)
        return held

    def integrity(self) -> list[IntegrityRow]:
        """Members whose balance differs from the sum of their applied ledger rows (or who
        have a balance or ledger rows but no member record). Empty means consistent."""
        applied = select(LedgerEvent.member_id.label("member_id"),
                         func.sum(LedgerEvent.points).label("total")).where(
            LedgerEvent.status == "applied").group_by(LedgerEvent.member_id).subquery()
        total = func.coalesce(applied.c.total, 0)
        a = select(Balance.member_id, Balance.balance, total, Member.member_id.is_not(None)
                   ).outerjoin(applied, applied.c.member_id == Balance.member_id
                   ).outerjoin(Member, Member.member_id == Balance.member_id
                   ).where(or_(Balance.balance != total, Member.member_id.is_(None)))
        b = select(applied.c.member_id, applied.c.total).outerjoin(
            Balance, Balance.member_id == applied.c.member_id).where(Balance.member_id.is_(None))
        out: list[IntegrityRow] = []
        with self._read() as conn:
            for m, bal, tot, has_member in conn.execute(a).all():
                out.append(IntegrityRow(m, int(bal), int(tot), bool(has_member)))
            for m, tot in conn.execute(b).all():
                out.append(IntegrityRow(m, None, int(tot), True))
        return out

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
        rows = [[_wire(c, v) for c, v in zip(spec.columns, r[1:], strict=True)] for r in raw]
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
        review = select(ReviewItem.kind, ReviewItem.terminal_id, ReviewItem.store_id,
                        ReviewItem.event_id, ReviewItem.detail, ReviewItem.created_at)
        if not include_resolved:
            review = review.where(ReviewItem.resolved.is_(False))
        report = ReconcileReport()
        with self._read() as conn:
            for o in conn.execute(od.order_by(Overdraft.created_at)).all():
                report.overdrafts.append(OverdraftRow(*o[:7], balance_now=int(o[7])))
            for f in conn.execute(flagged.order_by(LedgerEvent.received_at)).all():
                report.flagged.append(FlaggedRow(*f))
            for r in conn.execute(review.order_by(ReviewItem.created_at)).all():
                report.review.append(ReviewRow(*r))
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
