"""Issued offers at central: issue, record each use exactly once, expire, count.

An issued offer is one member-bound coupon (``issued_offers``); terminals pull the rows and
apply the coupon at the member's next tap. A terminal reports each use it made
(``POST /v1/offers/uses``); the first use of an offer wins, a repeat of the same use (a
lost answer) is a duplicate, and a use of an offer already used elsewhere (two tills
offline) is kept as a review item for store IT, never counted twice.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, case, func, select, tuple_, update

from pos_loyalty.ids import uuid7
from pos_loyalty.server.db import Database
from pos_loyalty.server.terminals.queries import TerminalAuth
from pos_loyalty.store.central_models import (
    AuditEntry,
    CashierLine,
    IssuedOffer,
    ReviewItem,
    SaleRecord,
)

MAX_USES = 500  # per push
REVIEW_NS = uuid.UUID("6f1d0a52-6c51-4a4e-9a55-0f6e3b1f7c21")  # review item ids of reuses


@dataclass(frozen=True)
class UseIn:
    """A use a terminal made: the issued offer, its sale, when, and the money off it gave."""

    issue_id: str
    txn_ref: str
    used_at: datetime
    discount: int


@dataclass(frozen=True)
class Issue:
    """One offer to issue to one member."""

    offer_id: str
    member_id: str
    code: str
    expires_at: datetime


def issue(db: Database, issues: Sequence[Issue], *, run_id: str, actor: str,
          audit: dict[str, object]) -> int:
    """Issue these offers and record the run in the audit log, in one transaction."""
    now = db.clock()

    def tx(conn: Connection) -> int:
        stamp = db.stamp(conn)
        rows = [{"issue_id": str(uuid7()), "offer_id": i.offer_id, "member_id": i.member_id,
                 "code": i.code, "run_id": run_id, "issued_at": now,
                 "expires_at": i.expires_at, "status": "live", "discount": 0,
                 "change_xid": stamp} for i in issues]
        for k in range(0, len(rows), 1000):  # one multi-row VALUES: the stamp is SQL
            conn.execute(db.insert(IssuedOffer).values(rows[k:k + 1000]))
        conn.execute(db.insert(AuditEntry).values(
            audit_id=str(uuid7()), at=now, actor=actor[:64], action="offers.run",
            target=run_id, store_id=None, before="",
            after=json.dumps(audit, sort_keys=True, default=str)))
        return len(rows)

    return db.write(tx)


def issued_since(db: Database, offer_id: str, since: datetime) -> dict[str, int]:
    """How many times each member got ``offer_id`` since ``since`` (the frequency cap)."""
    stmt = (select(IssuedOffer.member_id, func.count())
            .where(IssuedOffer.offer_id == offer_id, IssuedOffer.issued_at >= since)
            .group_by(IssuedOffer.member_id))
    with db.read() as conn:
        return {str(m): int(n) for m, n in conn.execute(stmt).all()}


def expire(db: Database, now: datetime) -> int:
    """Mark live offers past their end expired (terminals pull the change and drop them)."""

    def tx(conn: Connection) -> int:
        stamp = db.stamp(conn)
        return int(conn.execute(update(IssuedOffer).where(
            IssuedOffer.status == "live", IssuedOffer.expires_at <= now)
            .values(status="expired", change_xid=stamp)).rowcount)

    return db.write(tx)


def record_uses(db: Database, auth: TerminalAuth, uses: Sequence[UseIn]) -> list[str]:
    """Record each use once; per use ``used``, ``duplicate``, ``conflict`` or ``unknown``."""
    now = db.clock()

    def tx(conn: Connection) -> list[str]:
        stamp = db.stamp(conn)
        out: list[str] = []
        for u in uses:
            row = conn.execute(select(
                IssuedOffer.status, IssuedOffer.used_terminal, IssuedOffer.used_txn,
                IssuedOffer.member_id).where(IssuedOffer.issue_id == u.issue_id)
                .with_for_update()).first()
            if row is None:
                out.append("unknown")
            elif row.status != "used":  # live, or expired since the offline use
                conn.execute(update(IssuedOffer).where(IssuedOffer.issue_id == u.issue_id)
                             .values(status="used", used_at=u.used_at,
                                     used_terminal=auth.terminal_id, used_txn=u.txn_ref,
                                     discount=u.discount, change_xid=stamp))
                out.append("used")
            elif row.used_terminal == auth.terminal_id and row.used_txn == u.txn_ref:
                out.append("duplicate")
            else:
                _review(db, conn, auth, u, row.member_id, row.used_terminal, now)
                out.append("conflict")
        return out

    return db.write(tx)


def _review(db: Database, conn: Connection, auth: TerminalAuth, u: UseIn, member_id: str,
            first_terminal: str | None, now: datetime) -> None:
    """A second use of a single-use offer: one review item per (offer, terminal, sale)."""
    item = uuid.uuid5(REVIEW_NS, f"{u.issue_id}/{auth.terminal_id}/{u.txn_ref}")
    detail = {"issue_id": u.issue_id, "member_id": member_id, "txn_ref": u.txn_ref,
              "used_at": u.used_at.isoformat(), "discount": u.discount,
              "first_used_by": first_terminal,
              "reason": "offer used again after its one use (tills offline)"}
    stmt = db.insert(ReviewItem).values(
        item_id=str(item), kind="offer_reuse", terminal_id=auth.terminal_id,
        store_id=auth.store_id, event_id=u.issue_id, detail=json.dumps(detail, sort_keys=True),
        created_at=now, resolved=False)
    conn.execute(stmt.on_conflict_do_nothing(index_elements=[ReviewItem.item_id]))


@dataclass(frozen=True)
class OfferFigures:
    """Take-up and cost of one offer: issued, used, expired (incl. past their end while
    still live), live, the discount its uses gave (minor units, as the till's quote computed
    it), what the sales that used it were paid (central's sales, minor units: ``revenue``)
    and uses reported twice (``reuses``, held for review)."""

    offer_id: str
    issued: int
    used: int
    expired: int
    live: int
    discount: int
    revenue: int
    reuses: int

    @property
    def take_up_pct(self) -> float:
        return 100.0 * self.used / self.issued if self.issued else 0.0


def figures(db: Database, now: datetime, since: datetime | None = None) -> list[OfferFigures]:
    """Every offer's figures over the offers issued since ``since`` (all when None)."""
    o = IssuedOffer
    gone = and_(o.status == "live", o.expires_at <= now)
    stmt = select(
        o.offer_id, func.count(), func.sum(case((o.status == "used", 1), else_=0)),
        func.sum(case(((o.status == "expired") | gone, 1), else_=0)),
        func.coalesce(func.sum(o.discount), 0),
    ).group_by(o.offer_id).order_by(o.offer_id)
    reuse = select(o.offer_id, func.count()).join(
        ReviewItem, and_(ReviewItem.event_id == o.issue_id,
                         ReviewItem.kind == "offer_reuse")).group_by(o.offer_id)
    uses = select(o.offer_id, o.used_terminal, o.used_txn).where(o.status == "used")
    if since is not None:
        stmt = stmt.where(o.issued_at >= since)
        reuse = reuse.where(o.issued_at >= since)
        uses = uses.where(o.issued_at >= since)
    with db.read() as conn:
        rows = conn.execute(stmt).all()
        reuses = {str(k): int(n) for k, n in conn.execute(reuse).all()}
        revenue = _paid(conn, conn.execute(uses).all())
    out = []
    for offer_id, n, used, expired, discount in rows:
        used, expired = int(used or 0), int(expired or 0)
        out.append(OfferFigures(str(offer_id), int(n), used, expired, int(n) - used - expired,
                                int(discount), revenue.get(str(offer_id), 0),
                                reuses.get(str(offer_id), 0)))
    return out


def _paid(conn: Connection, used: Sequence[Any]) -> dict[str, int]:
    """offer -> what the sales that used it were paid. A use names its sale as terminal and
    ``pos_id/txn_id``; each split of that at a ``/`` is looked up by the sales' unique key
    (comparing the joined text in SQL cannot use an index: a scan per use)."""
    keys: dict[tuple[str, str, str], list[str]] = {}
    for offer_id, terminal, ref in used:
        parts = str(ref or "").split("/")
        for k in range(1, len(parts)):
            keys.setdefault((str(terminal), "/".join(parts[:k]), "/".join(parts[k:])),
                            []).append(str(offer_id))
    out: dict[str, int] = {}
    s = SaleRecord
    batch = list(keys)
    for i in range(0, len(batch), 500):
        found = conn.execute(select(s.terminal_id, s.pos_id, s.txn_id, s.paid_total).where(
            s.kind == "sale", tuple_(s.terminal_id, s.pos_id, s.txn_id).in_(batch[i:i + 500])))
        for terminal, pos_id, txn_id, paid in found:
            for offer_id in keys[(terminal, pos_id, txn_id)]:
                out[offer_id] = out.get(offer_id, 0) + int(paid)
    return out


def write_lines(db: Database, lines: Iterable[tuple[str, str, bool]]) -> int:
    """Set members' cashier lines (member, line, birthday rule on); only rows that change
    are written (and stamped, so terminals pull only those). Returns the rows written."""
    wanted = {m: (line[:80], bday) for m, line, bday in lines}
    now = db.clock()

    def tx(conn: Connection) -> int:
        have = {str(r[0]): (str(r[1]), bool(r[2])) for r in conn.execute(
            select(CashierLine.member_id, CashierLine.line, CashierLine.birthday)).all()}
        # members no longer given a line get an empty one (rows are never deleted: a
        # terminal learns of a change only from a row it pulls)
        for m, value in have.items():
            if m not in wanted and value != ("", False):
                wanted[m] = ("", False)
        changed = [(m, v) for m, v in sorted(wanted.items()) if have.get(m) != v]
        if not changed:
            return 0
        stamp = db.stamp(conn)
        for k in range(0, len(changed), 1000):
            rows = [{"member_id": m, "line": v[0], "birthday": v[1], "computed_at": now,
                     "change_xid": stamp} for m, v in changed[k:k + 1000]]
            stmt = db.insert(CashierLine).values(rows)
            conn.execute(stmt.on_conflict_do_update(
                index_elements=[CashierLine.member_id],
                set_={"line": stmt.excluded.line, "birthday": stmt.excluded.birthday,
                      "computed_at": stmt.excluded.computed_at,
                      "change_xid": stmt.excluded.change_xid}))
        return len(changed)

    return db.write(tx)
