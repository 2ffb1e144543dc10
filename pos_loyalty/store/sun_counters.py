"""NTAG 424 DNA SUN read counters in the terminal's store, shared with the chain by sync.

A SUN URL is single use: the tag's read counter goes up on every read, and a URL whose
counter is not above the last one accepted for that UID is a replay. Keeping that counter
in memory forgot it at every restart, and each terminal had its own: a copied URL worked
again after a reboot, or at the next till. Here the counter lives in the local SQLite store
(``sun_counters``, written with ``synchronous=FULL`` before the tap is reported, so even a
kill -9 right after cannot forget it), is pushed to central and pulled back by every
terminal of the chain (see :mod:`pos_loyalty.server.sun` and docs/sync.md).

The reader thread checks and records counters itself, through its own sqlite3 connection:
one indexed read and, for an accepted tap, one upsert, never a network call. Merging is by
maximum everywhere (a counter only goes up), so the reader, the sync worker's pulls and any
number of terminals can write in any order.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from pos_loyalty.errors import StoreError

#: Record a counter accepted here: higher than what is known, so central must learn it.
RECORD_SQL = (
    "INSERT INTO sun_counters (uid, counter, pushed) VALUES (?, ?, 0) "
    "ON CONFLICT(uid) DO UPDATE SET counter = excluded.counter, pushed = 0 "
    "WHERE excluded.counter > sun_counters.counter")
#: Apply counters pulled from central: central already knows them.
APPLY_PULLED_SQL = (
    "INSERT INTO sun_counters (uid, counter, pushed) VALUES (?, ?, 1) "
    "ON CONFLICT(uid) DO UPDATE SET counter = excluded.counter, pushed = 1 "
    "WHERE excluded.counter > sun_counters.counter")
PULL_COLUMNS = ("uid", "counter")
MAX_PUSH = 1000  # counters per push request


def sqlite_path(db_url: str) -> Path:
    """The file of a ``sqlite:///...`` store URL; StoreError for anything else."""
    url = make_url(db_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        raise StoreError(f"SUN counters need the terminal's SQLite file store, not {db_url!r}")
    return Path(url.database)


class StoreCounters:
    """:class:`pos_loyalty.nfc.sun.CounterStore` over the ``sun_counters`` table."""

    def __init__(self, db_url: str) -> None:
        path = sqlite_path(db_url)
        try:
            self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                         timeout=10.0)
            self._conn.execute("PRAGMA synchronous=FULL")  # on disk before the tap counts
            self._conn.execute("PRAGMA busy_timeout=10000")
            self._conn.execute("SELECT 1 FROM sun_counters LIMIT 1")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SUN counters in {path}: {exc}") from exc
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def last_counter(self, uid: bytes) -> int | None:
        """The highest counter accepted for this UID in the chain, as far as we know."""
        try:
            with self._lock:
                row = self._conn.execute("SELECT counter FROM sun_counters WHERE uid = ?",
                                         (bytes(uid).hex().upper(),)).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read SUN counter: {exc}") from exc
        return None if row is None else int(row[0])

    def record(self, uid: bytes, counter: int) -> None:
        """Remember an accepted counter (durably) and queue it for central."""
        try:
            with self._lock:
                self._conn.execute(RECORD_SQL, (bytes(uid).hex().upper(), int(counter)))
        except sqlite3.Error as exc:
            raise StoreError(f"cannot record SUN counter: {exc}") from exc


def unpushed(engine: Engine, limit: int = MAX_PUSH) -> list[tuple[str, int]]:
    """Counters central has not acknowledged yet, as (UID hex, counter)."""
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT uid, counter FROM sun_counters WHERE pushed = 0 ORDER BY uid LIMIT ?",
                (limit,)).all()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read SUN counters: {exc}") from exc
    return [(str(r[0]), int(r[1])) for r in rows]


def mark_pushed(engine: Engine, counters: Sequence[tuple[str, int]]) -> None:
    """Central has these; a counter raised meanwhile stays queued."""
    if not counters:
        return
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "UPDATE sun_counters SET pushed = 1 WHERE uid = ? AND counter = ?",
                list(counters))
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot update SUN counters: {exc}") from exc


def apply_pulled(conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
    """Merge counters pulled from central (the highest wins)."""
    values = []
    for uid, counter in rows:
        if not isinstance(uid, str) or type(counter) is not int:
            raise StoreError(f"central sent a malformed SUN counter: {uid!r}, {counter!r}")
        values.append((uid.upper(), counter))
    conn.exec_driver_sql(APPLY_PULLED_SQL, values)
