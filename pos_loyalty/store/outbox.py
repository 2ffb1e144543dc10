"""The sync outbox: what the sync worker reads and writes in the terminal store.

Unacknowledged ledger events are the outbox (pushed in ``terminal_seq`` order, marked acked
only with ids from central's answer); pulled pages are applied with their cursor in one
transaction; enrollment renames not-yet-pushed events. Every write here is one short
``BEGIN IMMEDIATE`` transaction, so it serialises with the till worker's sales (see
:mod:`pos_loyalty.store.sqlite`).

The clock offset (central's clock minus ours) is an estimate of *this process's* clock: it
is written to ``terminal_state`` for diagnosis but never read back, so a restart (the usual
moment a wrong clock gets fixed) starts a fresh estimate instead of carrying decades of
error into the next push.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.exc import IntegrityError

from pos_loyalty.errors import StoreError
from pos_loyalty.store import offers, sun_counters
from pos_loyalty.store.entities import PULL_ENTITIES
from pos_loyalty.store.models import Base, LedgerEvent, TerminalState
from pos_loyalty.store.sqlite import read, write


@dataclass(frozen=True)
class SyncIdentity:
    """This terminal's enrollment as the sync worker needs it.

    ``clock_offset_ms`` is None until this process has measured it (see the module doc).
    """

    terminal_id: str
    store_id: str | None
    server_url: str | None
    credential: str | None
    clock_offset_ms: int | None
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


_PULL_COLUMNS: dict[str, tuple[str, ...]] = {e.name: e.columns for e in PULL_ENTITIES}


class SyncOutbox:
    """Enrollment, the outbox of unacked events, pulled pages and sync bookkeeping."""

    engine: Engine
    terminal_id: str
    _clock_offset_ms: int | None = None

    def sync_identity(self) -> SyncIdentity:
        """Who this terminal is to central, and where central is (None before enrollment)."""
        with read(self.engine, "reading the terminal's enrollment") as conn:
            st = conn.execute(select(TerminalState.terminal_id, TerminalState.store_id,
                                     TerminalState.server_url, TerminalState.credential,
                                     TerminalState.last_sync_at)).one()
        return SyncIdentity(st.terminal_id, st.store_id, st.server_url, st.credential,
                            self._clock_offset_ms, st.last_sync_at)

    def set_enrollment(self, *, server_url: str, terminal_id: str, store_id: str,
                       credential: str) -> None:
        """Record the credential from enrollment and take the terminal id central assigned.

        Events not yet pushed are renamed to the new id (central has never seen them); a
        store whose events were already acked under another id cannot be re-enrolled.
        """
        with write(self.engine, "recording the enrollment") as conn:
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
        with read(self.engine, "reading the outbox") as conn:
            return [PendingEvent(*row) for row in conn.execute(stmt)]

    def pending_count(self) -> int:
        with read(self.engine, "counting the outbox") as conn:
            return int(conn.execute(select(func.count()).select_from(LedgerEvent)
                                    .where(LedgerEvent.acked.is_(False))).scalar_one())

    def mark_acked(self, event_ids: Sequence[str]) -> int:
        """Mark events acknowledged by central (call only with ids from central's answer)."""
        if not event_ids:
            return 0
        done = 0
        with write(self.engine, "marking events acknowledged") as conn:
            for i in range(0, len(event_ids), 500):
                done += conn.execute(update(LedgerEvent).where(
                    LedgerEvent.event_id.in_(event_ids[i:i + 500])).values(acked=True)).rowcount
        return done

    def pull_cursors(self) -> dict[str, str]:
        with read(self.engine, "reading pull cursors") as conn:
            raw = conn.execute(select(TerminalState.pull_cursor)).scalar_one()
        try:
            cursors: dict[str, str] = json.loads(raw or "{}")
        except ValueError as exc:
            raise StoreError(f"stored pull cursors are damaged: {exc}") from exc
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
        with write(self.engine, f"applying a {entity} page") as conn:
            if rows:
                _apply_rows(conn, entity, rows, stamp)
            st = conn.execute(select(TerminalState.pull_cursor)).scalar_one()
            cursors = json.loads(st or "{}")
            cursors[entity] = after
            conn.execute(update(TerminalState).where(TerminalState.id == 1)
                         .values(pull_cursor=json.dumps(cursors, sort_keys=True)))
        return len(rows)

    def bulk_load_indexes(self, *, present: bool) -> None:
        """Drop (``present=False``) or restore the cards' secondary indexes.

        A first bootstrap loads every card at once; building the UID index once, sorted,
        is much cheaper than inserting a million random UIDs into it. Restoring is
        idempotent, and the sync client restores at the start of every round, so a bootstrap
        interrupted by a crash cannot leave the store without its indexes.
        """
        table = Base.metadata.tables["cards"]
        with write(self.engine, "changing local indexes") as conn:
            for index in sorted(table.indexes, key=lambda i: str(i.name)):
                if index.unique:
                    continue
                if present:
                    index.create(conn, checkfirst=True)
                else:
                    index.drop(conn, checkfirst=True)

    def record_sync(self, *, now: datetime, clock_offset_ms: int | None = None,
                    pulled: bool = True) -> None:
        """Note a completed sync round (its time confirms every cached balance)."""
        values: dict[str, Any] = {}
        if pulled:
            values["last_sync_at"] = now
        if clock_offset_ms is not None:
            values["clock_offset_ms"] = clock_offset_ms
        if values:
            with write(self.engine, "recording the sync round") as conn:
                conn.execute(update(TerminalState).where(TerminalState.id == 1).values(values))
        if clock_offset_ms is not None:
            self._clock_offset_ms = clock_offset_ms


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
    elif entity == "offers":
        offers.apply_pulled_offers(conn, rows)
    elif entity == "cashier_lines":
        offers.apply_pulled_lines(conn, rows)
