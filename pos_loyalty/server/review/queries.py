"""Held events, the balance invariant and reconciliation, for store IT."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, func, or_, select, update

from pos_loyalty.errors import StoreError
from pos_loyalty.server.db import Database
from pos_loyalty.server.ledger.queries import apply_deltas
from pos_loyalty.store.central_models import (
    Balance,
    LedgerEvent,
    Member,
    Overdraft,
    ReviewItem,
)

log = logging.getLogger("pos_loyalty.server")


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


def held(db: Database, store_id: str | None = None) -> list[HeldRow]:
    """Events stored but not applied, waiting for store IT, oldest first."""
    stmt = select(LedgerEvent.event_id, LedgerEvent.member_id, LedgerEvent.terminal_id,
                  LedgerEvent.store_id, LedgerEvent.kind, LedgerEvent.points,
                  LedgerEvent.txn_ref, LedgerEvent.received_at, LedgerEvent.reason,
                  ).where(LedgerEvent.status == "held")
    if store_id is not None:
        stmt = stmt.where(LedgerEvent.store_id == store_id)
    with db.read() as conn:
        return [HeldRow(*r) for r in conn.execute(stmt.order_by(LedgerEvent.received_at))]


def resolve_held(db: Database, event_id: str, *, release: bool, note: str) -> HeldRow:
    """Release (apply now) or reject (never apply) a held event, with store IT's reason."""
    now = db.clock()
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
            apply_deltas(db, conn, {held.member_id: held.points})
        return held

    held = db.write(tx)
    log.warning("held event %s %s by store IT: %s", event_id,
                "released" if release else "rejected", note)
    return held


def integrity(db: Database) -> list[IntegrityRow]:
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
    with db.read() as conn:
        for m, bal, tot, has_member in conn.execute(a).all():
            out.append(IntegrityRow(m, int(bal), int(tot), bool(has_member)))
        for m, tot in conn.execute(b).all():
            out.append(IntegrityRow(m, None, int(tot), True))
    return out


def reconcile(db: Database, *, include_resolved: bool = False) -> ReconcileReport:
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
    with db.read() as conn:
        for o in conn.execute(od.order_by(Overdraft.created_at)).all():
            report.overdrafts.append(OverdraftRow(*o[:7], balance_now=int(o[7])))
        for f in conn.execute(flagged.order_by(LedgerEvent.received_at)).all():
            report.flagged.append(FlaggedRow(*f))
        for r in conn.execute(review.order_by(ReviewItem.created_at)).all():
            report.review.append(ReviewRow(*r))
    return report
