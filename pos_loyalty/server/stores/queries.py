"""A store's event limits (caps per event and per terminal-day, offline budgets)."""

from __future__ import annotations

from dataclasses import asdict

from sqlalchemy import Connection, select

from pos_loyalty.server.checks import EventPolicy
from pos_loyalty.server.db import Database
from pos_loyalty.store.central_models import StorePolicy


def policy(db: Database, store_id: str) -> EventPolicy:
    """The store's event limits (the server defaults if store IT set none)."""
    with db.read() as conn:
        return policy_in(db, conn, store_id)


def policy_in(db: Database, conn: Connection, store_id: str) -> EventPolicy:
    """:func:`policy` inside a transaction already open."""
    row = conn.execute(select(
        StorePolicy.max_event_points, StorePolicy.max_terminal_day_earn,
        StorePolicy.offline_member_cap, StorePolicy.offline_terminal_budget,
        StorePolicy.debit_other_stores).where(StorePolicy.store_id == store_id)).first()
    if row is None:
        return db.default_policy
    return EventPolicy(int(row[0]), int(row[1]), int(row[2]), int(row[3]), bool(row[4]))


def set_policy(db: Database, store_id: str, policy: EventPolicy) -> None:
    values = asdict(policy)

    def tx(conn: Connection) -> None:
        conn.execute(db.insert(StorePolicy).values(store_id=store_id, **values)
                     .on_conflict_do_update(index_elements=[StorePolicy.store_id],
                                            set_=values))

    db.write(tx)
