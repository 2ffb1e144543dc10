"""The central database: engine set-up, transactions with retry, change stamps.

Every resource's queries (``server/<resource>/queries.py``) are functions over one
:class:`Database`; SQLAlchemy errors are translated to :class:`StoreError` here.

Change stamps (``change_xid``): on PostgreSQL the writing transaction's id
(``pg_current_xact_id()``); on SQLite a counter bumped inside the writing transaction. The
horizon of a pull is the oldest transaction id still running (PostgreSQL
``pg_snapshot_xmin(pg_current_snapshot())``, SQLite the committed counter + 1): every row
stamped below it is final, so a cursor (xid, key) never skips a row committed out of order.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
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
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry

from pos_loyalty.errors import StoreError
from pos_loyalty.server.checks import EventPolicy
from pos_loyalty.store.central_models import ChangeClock

T = TypeVar("T")


class Refused(StoreError):
    """A change store IT asked for that cannot be made as asked (a taken id, an unknown
    member, an empty reason): the request's fault, not the database's. ``status`` is the
    HTTP answer (409 conflict, 404 not found, 422 invalid)."""

    def __init__(self, reason: str, *, status: int = 409) -> None:
        super().__init__(reason)
        self.status = status

MAX_INT64 = 2**63 - 1


def utcnow() -> datetime:
    """Server time, naive UTC (the schema stores naive UTC everywhere)."""
    return datetime.now(UTC).replace(tzinfo=None)


def aware(value: datetime) -> datetime:
    """A naive UTC time as it goes out: with its offset, so no reader guesses the zone."""
    return value.replace(tzinfo=UTC)


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


def pg_binary(conn: Connection, sql: str, params: Sequence[Any], *,
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
    except psycopg.Error as exc:  # as SQLAlchemy would wrap it, so write() can retry
        raise DBAPIError.instance(sql, params, exc, psycopg.Error) from exc


def _retryable(exc: DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return code in ("40001", "40P01")  # serialization failure, deadlock detected


class Database:
    """One SQLAlchemy engine (SQLite for one shop, PostgreSQL for a chain) and the server's
    settings the queries need: its clock, the future tolerance and the default policy."""

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
        self.insert = dialect.insert

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"central database error: {exc}") from exc

    def write(self, fn: Callable[[Connection], T], *, attempts: int = 5) -> T:
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

    def stamp(self, conn: Connection) -> ColumnElement[int] | int:
        """The change stamp for rows this transaction writes."""
        if self.is_pg:
            return cast(cast(func.pg_current_xact_id(), Text), BigInteger)
        return int(conn.execute(
            update(ChangeClock).where(ChangeClock.id == 1)
            .values(value=ChangeClock.value + 1).returning(ChangeClock.value)
        ).scalar_one())

    def horizon(self) -> int:
        """Every change stamped below this value is committed or gone for good."""
        with self.read() as conn:
            if self.is_pg:
                sql = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
                return int(conn.execute(text(sql)).scalar_one())
            return int(conn.execute(select(ChangeClock.value)).scalar_one()) + 1

