"""The terminal's local store: one SQLite database, three jobs.

* :mod:`~pos_loyalty.store.lookup` - the tap path (member by card or UID);
* :mod:`~pos_loyalty.store.sales` - sales, refunds, expiry and the ledger they write;
* :mod:`~pos_loyalty.store.outbox` - what the sync worker pushes, pulls and records.

:class:`LocalStore` opens the database (:mod:`~pos_loyalty.store.sqlite`: SQLite only,
created 0600, WAL with ``synchronous=FULL``) and is all three; the sync package sees it only
as a :class:`~pos_loyalty.store.outbox.SyncOutbox`. Every method raises StoreError for any
database failure, never a SQLAlchemy or sqlite3 exception.

Two threads write it: the daemon's worker (sales, refunds, expiry) and the sync worker
(acks, pulled pages); each write is one ``BEGIN IMMEDIATE`` transaction, so one waits for
the other (up to ``busy_timeout_s``) and a write that still cannot start fails whole.
"""

from __future__ import annotations

from sqlalchemy import insert, inspect, select
from sqlalchemy.exc import SQLAlchemyError

from pos_loyalty.errors import StoreError
from pos_loyalty.store.lookup import MemberRecord, TapLookup
from pos_loyalty.store.models import Base, TerminalState
from pos_loyalty.store.outbox import PendingEvent, SyncIdentity, SyncOutbox
from pos_loyalty.store.sales import (
    TXN_REF_MAX,
    RedeemCheck,
    RedeemFacts,
    RefundRecord,
    SaleResult,
    SalesLedger,
    StoredSale,
    fit_ref,
)
from pos_loyalty.store.sqlite import BUSY_TIMEOUT_S, open_engine, write

__all__ = [
    "TXN_REF_MAX", "LocalStore", "MemberRecord", "PendingEvent", "RedeemCheck", "RedeemFacts",
    "RefundRecord", "SaleResult", "StoredSale", "SyncIdentity", "fit_ref",
]


class LocalStore(TapLookup, SalesLedger, SyncOutbox):
    """The terminal's own database, opened (and its tables made if missing)."""

    def __init__(self, url: str, *, terminal_id: str = "T-LOCAL",
                 busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        self.url = url
        self.engine = open_engine(url, busy_timeout_s=busy_timeout_s)
        try:
            insp = inspect(self.engine)
            old = insp.has_table("members") and "state" not in {
                c["name"] for c in insp.get_columns("members")}
            if not old:
                Base.metadata.create_all(self.engine)
        except SQLAlchemyError as exc:
            self.engine.dispose()
            raise StoreError(f"cannot open local store {url!r}: {exc}") from exc
        if old:  # made by an older version: its members lack engine state
            self.engine.dispose()
            raise StoreError(f"local store {url!r} has an older schema; run "
                             f"`pos-loyalty db upgrade --terminal {url}` first")
        self.terminal_id = self._ensure_terminal(terminal_id)
        self._init_lookup()

    def close(self) -> None:
        self._close_lookup()
        self.engine.dispose()

    def _ensure_terminal(self, terminal_id: str) -> str:
        with write(self.engine, "reading the terminal's identity") as conn:
            known = conn.execute(select(TerminalState.terminal_id)).scalar_one_or_none()
            if known is not None:
                return str(known)
            conn.execute(insert(TerminalState).values(id=1, terminal_id=terminal_id,
                                                      next_seq=1))
            return terminal_id
