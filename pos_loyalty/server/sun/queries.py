"""The chain's NTAG 424 DNA SUN read counters at central: the highest one wins.

Terminals push the counters they accepted (``POST /v1/sun/counters``) and pull everyone's
back as the ``sun_counters`` entity of the delta pull, so a SUN URL read once at any till is
refused as a replay at every other till after the next sync. A counter only ever rises: a
lower or equal report changes nothing (and stamps nothing, so terminals pull nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from pos_loyalty.server.db import Database
from pos_loyalty.server.terminals.queries import TerminalAuth
from pos_loyalty.store.central_models import SunCounter

MAX_COUNTERS = 1000  # per push
COUNTER_MAX = 0xFFFFFF  # the tag's counter is 3 bytes


@dataclass(frozen=True)
class CounterIn:
    """One accepted read: the tag's 7-byte UID as upper-case hex, and its read counter."""

    uid: str
    counter: int


def record_counters(db: Database, auth: TerminalAuth,
                    counters: Sequence[CounterIn]) -> int:
    """Raise each tag's counter to the reported one; returns how many rose."""
    if not counters:
        return 0
    highest: dict[str, int] = {}
    for c in counters:  # one row per UID: a batch may name a tag twice
        highest[c.uid] = max(c.counter, highest.get(c.uid, -1))
    now = db.clock()

    def tx(conn: Connection) -> int:
        stamp = db.stamp(conn)  # on PostgreSQL an expression: one multi-row VALUES
        rows = [{"uid": uid, "counter": n, "terminal_id": auth.terminal_id,
                 "updated_at": now, "change_xid": stamp} for uid, n in sorted(highest.items())]
        stmt = db.insert(SunCounter).values(rows)
        stmt = stmt.on_conflict_do_update(
            index_elements=[SunCounter.uid],
            set_={"counter": stmt.excluded.counter, "terminal_id": stmt.excluded.terminal_id,
                  "updated_at": stmt.excluded.updated_at,
                  "change_xid": stmt.excluded.change_xid},
            where=SunCounter.counter < stmt.excluded.counter)
        return len(conn.execute(stmt.returning(SunCounter.uid)).all())  # the rows that rose

    return db.write(tx)
