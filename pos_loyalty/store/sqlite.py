"""The terminal database: SQLite only, crash-safe, with real transactions.

Every part of the terminal store (tap lookup, sales and ledger, sync outbox) and the terminal
migrations open the database here, so the rules live in one place:

* Only ``sqlite://`` URLs: the store's upserts, ``RETURNING`` and the tap fast path are
  SQLite's. Any other URL is a one-line :class:`StoreError`, never a driver's traceback.
* A new database file is created ``0600`` (it holds the central credential); SQLite gives
  its ``-wal`` and ``-shm`` files the same mode.
* WAL, ``synchronous=FULL`` (a committed sale survives a power cut), foreign keys on, and a
  busy timeout so a writer waits for the other writer instead of failing at once.
* Python's sqlite3 module would start transactions itself, and only before DML: a migration's
  ``CREATE TABLE`` would commit on its own. Here the driver starts none; SQLAlchemy's
  ``begin`` emits ``BEGIN`` (or ``BEGIN IMMEDIATE`` for a :func:`write` transaction), so DDL
  and DML alike are in the transaction and a kill at any moment rolls all of it back.

Two threads write: the daemon's worker (sales, refunds, expiry) and the sync worker (acks,
pulled pages, enrollment). Each write is one short ``BEGIN IMMEDIATE`` transaction: it takes
SQLite's write lock before its first read, so its reads and writes are one atomic step and
the other writer waits up to the busy timeout; past it, the write fails as a StoreError and
changes nothing.

The busy timeout (5 s) equals the till's reply timer, so a till request may not wait that
long: the daemon answers each till request within a deadline (:func:`answer_by`). Every
write the request makes, in that thread, waits for the lock at most until the deadline, so
a write stuck behind the other writer fails in time for the till to get ``error store``
rather than time out; the sync worker's writes keep the full busy timeout.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry

from pos_loyalty.errors import StoreError

BUSY_TIMEOUT_S = 5.0
_IMMEDIATE = "pos_loyalty_immediate"  # execution option: this transaction writes
_BUSY_MS = "pos_loyalty_busy_ms"  # connection info key: the engine's own busy timeout
_deadline = threading.local()  # .at: time.monotonic() by which this thread must answer


@contextmanager
def answer_by(seconds: float) -> Iterator[None]:
    """Inside the block, this thread's writes wait for the write lock at most until
    ``seconds`` from now (never longer than the engine's busy timeout), so the caller can
    answer in time; past the deadline a write that cannot start fails as a StoreError."""
    previous = getattr(_deadline, "at", None)
    _deadline.at = time.monotonic() + seconds
    try:
        yield
    finally:
        _deadline.at = previous


def sqlite_url(url: str) -> URL:
    """``url`` parsed, or a StoreError saying in one line why it cannot be the terminal store."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise StoreError(f"invalid database URL {url!r}: {exc}") from exc
    backend = parsed.get_backend_name()
    if backend != "sqlite":
        shown = parsed.render_as_string(hide_password=True)
        raise StoreError(f"the terminal store is SQLite only, got a {backend} URL ({shown}); "
                         "use sqlite:///PATH")
    return parsed


def _create_private(url: URL) -> None:
    """Create the database file with mode 0600 if it does not exist yet."""
    path = url.database
    if not path or path == ":memory:" or path.startswith("file:") or url.query.get("uri"):
        return
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise StoreError(f"cannot create the terminal database {path}: {exc.strerror}") from exc
    os.close(fd)


def open_engine(url: str, *, busy_timeout_s: float = BUSY_TIMEOUT_S) -> Engine:
    """An engine for the terminal database at ``url`` (see the module docstring)."""
    parsed = sqlite_url(url)
    _create_private(parsed)
    try:
        engine = create_engine(parsed)
    except (SQLAlchemyError, ValueError, ImportError) as exc:
        raise StoreError(f"cannot open database {url!r}: {exc}") from exc
    busy_ms = max(0, round(busy_timeout_s * 1000))

    def on_connect(dbapi_conn: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        dbapi_conn.isolation_level = None  # we send BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={busy_ms}")
        cur.close()
        record.info[_BUSY_MS] = busy_ms

    def on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", on_begin)
    return engine


@contextmanager
def write(engine: Engine, what: str) -> Iterator[Connection]:
    """One write transaction holding SQLite's write lock from its first statement.

    Commits when the block ends, rolls back if it raises; database failures (a locked or
    damaged file, a missing table) become a StoreError naming ``what``.
    """
    at: float | None = getattr(_deadline, "at", None)
    try:
        with engine.connect() as conn:
            conn.execution_options(**{_IMMEDIATE: True})
            if at is None:
                with conn.begin():
                    yield conn
                return
            full = int(conn.connection.info.get(_BUSY_MS, 0))
            left = max(0, min(full, round((at - time.monotonic()) * 1000)))
            _busy(conn, left)
            try:
                with conn.begin():
                    yield conn
            finally:  # the pooled connection goes back with the engine's own timeout
                _busy(conn, full)
    except SQLAlchemyError as exc:
        raise StoreError(f"{what} failed: {_reason(exc)}") from exc


def _busy(conn: Connection, ms: int) -> None:
    """Set the busy timeout on the driver's connection, outside any transaction."""
    cur = conn.connection.cursor()
    try:
        cur.execute(f"PRAGMA busy_timeout={int(ms)}")
    finally:
        cur.close()


@contextmanager
def read(engine: Engine, what: str) -> Iterator[Connection]:
    """A read transaction (one snapshot for every statement in the block)."""
    try:
        with engine.connect() as conn, conn.begin():
            yield conn
    except SQLAlchemyError as exc:
        raise StoreError(f"{what} failed: {_reason(exc)}") from exc


@contextmanager
def translated(what: str) -> Iterator[None]:
    """SQLAlchemy's errors inside the block as a StoreError naming ``what``."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise StoreError(f"{what} failed: {_reason(exc)}") from exc


def _reason(exc: SQLAlchemyError) -> str:
    """The database's own words (``database is locked``), without SQLAlchemy's SQL dump."""
    orig = getattr(exc, "orig", None)
    return str(orig) if orig is not None else str(exc).split("\n", 1)[0]
