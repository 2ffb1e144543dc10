"""Sales at central: the push terminals make, and the baskets reports and replays read.

A pushed record is stored once per (terminal, pos, txn, kind, refund id): the same body
again is a duplicate, another body for a known key is a conflict kept for store IT's review
(nothing replaced). Refunds are stored with negative money and quantities so that a plain
sum over sales and refunds is net; voids keep their basket and count in no revenue. None of
it moves a balance: the ledger does that.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, select

from pos_loyalty.errors import AuthError
from pos_loyalty.ids import uuid7
from pos_loyalty.rules.model import Basket, BasketLine, MemberView
from pos_loyalty.rules.replay import PastSale
from pos_loyalty.server.db import Database
from pos_loyalty.server.sales.schemas import SaleRecordCreate
from pos_loyalty.server.terminals.queries import TerminalAuth
from pos_loyalty.store.central_models import Member, ReviewItem, SaleLine, SaleRecord, Terminal

STALE = timedelta(days=365)

Key = tuple[str, str, str, str]  # pos_id, txn_id, kind, refund_id


@dataclass(frozen=True)
class SalesOutcome:
    statuses: list[str]  # per record: stored / duplicate / conflict
    server_time: datetime

    def count(self, status: str) -> int:
        return sum(1 for s in self.statuses if s == status)


def body_json(rec: SaleRecordCreate) -> str:
    """The record in one canonical text (its hash tells a repeat from a change)."""
    return json.dumps(rec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def _key(rec: SaleRecordCreate) -> Key:
    return (rec.pos_id, rec.txn_id, rec.kind, rec.refund_id)


def push(db: Database, auth: TerminalAuth, records: Sequence[SaleRecordCreate]) -> SalesOutcome:
    """Store a terminal's sale summaries exactly once; answer each as stored, duplicate or
    conflict (in the order given)."""
    now = db.clock()
    return db.write(lambda conn: _push_tx(db, conn, auth, records, now))


def _known(conn: Connection, terminal_id: str, keys: Sequence[Key]) -> dict[Key, tuple[str, str]]:
    """Stored (sale_id, body_hash) by key, for the keys of a batch."""
    out: dict[Key, tuple[str, str]] = {}
    cols = (SaleRecord.pos_id, SaleRecord.txn_id, SaleRecord.kind, SaleRecord.refund_id)
    for i in range(0, len(keys), 300):
        chunk = keys[i:i + 300]
        rows = conn.execute(select(*cols, SaleRecord.sale_id, SaleRecord.body_hash).where(
            SaleRecord.terminal_id == terminal_id,
            SaleRecord.txn_id.in_(sorted({k[1] for k in chunk})))).all()
        wanted = set(chunk)
        for r in rows:
            key = (r[0], r[1], r[2], r[3])
            if key in wanted:
                out[key] = (r[4], r[5])
    return out


def _push_tx(db: Database, conn: Connection, auth: TerminalAuth,
             records: Sequence[SaleRecordCreate], now: datetime) -> SalesOutcome:
    # one push per terminal at a time: the row lock orders two pushes of the same records
    found = conn.execute(select(Terminal.terminal_id).where(
        Terminal.terminal_id == auth.terminal_id).with_for_update()).first()
    if found is None:
        raise AuthError("unknown terminal", status=403)
    known = _known(conn, auth.terminal_id, [_key(r) for r in records])
    statuses: list[str] = []
    sales: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    reviews: list[dict[str, Any]] = []
    future = now + db.future_tolerance
    for rec in records:
        text = body_json(rec)
        digest = hashlib.sha256(text.encode()).hexdigest()
        key = _key(rec)
        old = known.get(key)
        if old is not None:
            if old[1] == digest:
                statuses.append("duplicate")
                continue
            statuses.append("conflict")
            reviews.append({"item_id": str(uuid7()), "kind": "sale_conflict",
                            "terminal_id": auth.terminal_id, "store_id": auth.store_id,
                            "event_id": old[0], "created_at": now, "resolved": False,
                            "detail": "sale key known with other content: " + text})
            continue
        sale_id = str(uuid7())
        known[key] = (sale_id, digest)
        statuses.append("stored")
        sign = -1 if rec.kind == "refund" else 1
        flags = [f for f, on in (("future", rec.terminal_time > future),
                                 ("clock", rec.terminal_time < now - STALE)) if on]
        sales.append({
            "sale_id": sale_id, "terminal_id": auth.terminal_id, "store_id": auth.store_id,
            "kind": rec.kind, "pos_id": rec.pos_id, "txn_id": rec.txn_id,
            "refund_id": rec.refund_id, "member_id": rec.member_id,
            "terminal_time": rec.terminal_time, "received_at": now, "flags": ",".join(flags),
            "basket_total": sign * rec.basket_total,
            "discount_total": sign * rec.discount_total, "paid_total": sign * rec.paid_total,
            "points_earned": sign * rec.points_earned,
            "points_redeemed": sign * rec.points_redeemed, "points": rec.points,
            "coupons": ",".join(rec.coupons), "body_hash": digest})
        for n, ln in enumerate(rec.lines):
            lines.append({
                "sale_id": sale_id, "line_no": n, "kind": rec.kind, "store_id": auth.store_id,
                "member_id": rec.member_id, "terminal_time": rec.terminal_time,
                "sku": ln.sku, "category": ln.category, "qty": sign * ln.qty,
                "amount": sign * ln.amount, "discount": sign * ln.discount,
                "points": sign * ln.points})
    if sales:
        conn.execute(db.insert(SaleRecord), sales)
    if lines:
        conn.execute(db.insert(SaleLine), lines)
    if reviews:
        conn.execute(db.insert(ReviewItem), reviews)
    return SalesOutcome(statuses, now)


# -- reading baskets back -------------------------------------------------------------------


def central_baskets(db: Database, *, days: int, stores: Sequence[str] = (),
                    now: datetime | None = None,
                    sale_ids: Sequence[str] | None = None) -> Iterator[PastSale]:
    """The sales of the last ``days`` days (terminal time, by central's clock), each as the
    basket the rules engine replays: net of the units refunded since, a sale refunded whole
    left out, voids never in. The member is taken with their tier as central holds it now.
    Streams: a year of a chain's sales never sits in memory at once. ``sale_ids``: only
    these sales (a sample).
    """
    since = (now or db.clock()) - timedelta(days=days)
    returned = _returned_units(db, since, stores)
    s, ln = SaleRecord, SaleLine
    stmt = (select(s.sale_id, s.terminal_id, s.pos_id, s.txn_id, s.member_id, s.terminal_time,
                   Member.tier, ln.sku, ln.category, ln.qty, ln.amount)
            .join(ln, ln.sale_id == s.sale_id)
            .outerjoin(Member, Member.member_id == s.member_id)
            .where(s.kind == "sale", s.terminal_time >= since)
            .order_by(s.terminal_time, s.sale_id, ln.line_no))
    if stores:
        stmt = stmt.where(s.store_id.in_(list(stores)))
    if sale_ids is not None:  # by primary key, a chunk at a time
        picked = sorted(sale_ids)
        chunks = [stmt.where(s.sale_id.in_(picked[i:i + 500]))
                  for i in range(0, len(picked), 500)]
    else:
        chunks = [stmt]
    with db.read() as conn:
        for chunk in chunks:
            yield from _fold(conn.execution_options(stream_results=True, yield_per=5000)
                             .execute(chunk), returned)


def _fold(rows: Any, returned: dict[tuple[str, str, str, str], int]) -> Iterator[PastSale]:
    """Basket lines (ordered by sale) into past sales, less the units returned since."""
    current: str | None = None
    head: Any = None
    basket: list[BasketLine] = []
    for r in rows:
        if r.sale_id != current:
            if current is not None and basket:
                yield _past(head, basket)
            current, head, basket = r.sale_id, r, []
        back = returned.get((r.terminal_id, r.pos_id, r.txn_id, r.sku), 0)
        qty = int(r.qty)
        keep = qty - min(back, qty)
        if back:
            returned[(r.terminal_id, r.pos_id, r.txn_id, r.sku)] = back - (qty - keep)
        if keep > 0:
            basket.append(BasketLine(r.sku, keep, int(r.amount) // qty, r.category))
    if current is not None and basket:
        yield _past(head, basket)


def _past(head: Any, lines: list[BasketLine]) -> PastSale:
    member = MemberView(member_id=head.member_id or "",
                        tier=head.tier if head.member_id else None)
    return PastSale(f"{head.pos_id}/{head.txn_id}", head.terminal_time, Basket(tuple(lines)),
                    member)


def _returned_units(db: Database, since: datetime,
                    stores: Sequence[str]) -> dict[tuple[str, str, str, str], int]:
    """Units refunded per (terminal, pos, txn, sku) by refunds made since ``since``."""
    s, ln = SaleRecord, SaleLine
    stmt = (select(s.terminal_id, s.pos_id, s.txn_id, ln.sku, ln.qty)
            .join(ln, ln.sale_id == s.sale_id)
            .where(and_(s.kind == "refund", s.terminal_time >= since)))
    if stores:
        stmt = stmt.where(s.store_id.in_(list(stores)))
    out: dict[tuple[str, str, str, str], int] = {}
    with db.read() as conn:
        for t, p, x, sku, qty in conn.execute(stmt):
            k = (t, p, x, sku)
            out[k] = out.get(k, 0) - int(qty)  # stored negative
    return out
