"""The sales outbox: a summary of every sale, refund and void, for central's reports.

A summary is written in the same transaction as the sale (or refund, or void) it describes,
so a committed sale always has one and a crash never leaves one without the other. The sync
worker pushes unpushed summaries in ``id`` order and marks them pushed only with the keys
central answered, so each reaches central exactly once (central is idempotent on the key
too). The summary is JSON in the wire form central takes (see docs/reports.md):

``{"kind", "pos_id", "txn_id", "refund_id", "member_id", "terminal_time", "basket_total",
"discount_total", "paid_total", "points_earned", "points_redeemed", "points", "coupons",
"lines": [{"sku", "category", "qty", "amount", "discount", "points"}]}``

Every amount and quantity is non-negative (a refund's are what went back; central stores
them negative); ``points`` is the signed change the record made to the member's balance.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Connection,
    DateTime,
    Engine,
    Integer,
    String,
    Text,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from pos_loyalty.rules import Basket, Quote
from pos_loyalty.store.models import Base
from pos_loyalty.store.sqlite import read, write

MAX_PUSH = 500
"""Summaries per push: far below central's cap, small enough for a slow link."""
FIELD_MAX = 64


class SaleSummary(Base):
    """One summary waiting for (or acknowledged by) central."""

    __tablename__ = "sale_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(8))
    pos_id: Mapped[str] = mapped_column(String(64))
    txn_id: Mapped[str] = mapped_column(String(64))
    refund_id: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    body: Mapped[str] = mapped_column(Text)
    pushed: Mapped[bool] = mapped_column(Boolean, default=False, index=True)


@dataclass(frozen=True)
class PendingSummary:
    id: int
    body: dict[str, Any]


def _clean(text: str) -> str:
    """A till's text as central keeps it: no NUL (PostgreSQL refuses it), 64 characters."""
    return text.replace("\x00", "\ufffd")[:FIELD_MAX]


def _categories(basket: Basket | None) -> dict[str, str]:
    return {} if basket is None else {ln.sku: ln.category for ln in basket.lines}


def sale_body(*, pos_id: str, txn_id: str, member_id: str | None, quote: Quote,
              basket: Basket | None, points: int, now: datetime) -> dict[str, Any]:
    """The summary of a committed sale, from its quote (and basket, for categories)."""
    cats = _categories(basket)
    lines = [{"sku": _clean(e.sku), "category": _clean(cats.get(e.sku, "")), "qty": e.qty,
              "amount": e.amount, "discount": e.discount + e.redeem_value,
              "points": max(0, e.points)} for e in quote.effects]
    return {
        "kind": "sale", "pos_id": pos_id, "txn_id": txn_id, "refund_id": "",
        "member_id": member_id, "terminal_time": now.isoformat(),
        "basket_total": quote.basket_total,
        "discount_total": quote.discount_total,  # redemption included
        "paid_total": max(0, quote.basket_total - quote.discount_total),
        "points_earned": max(0, quote.points_total) if member_id else 0,
        "points_redeemed": quote.redeem_points if member_id else 0,
        "points": points, "coupons": [_clean(c) for c in quote.coupons_used][:50],
        "lines": lines}


def refund_body(*, pos_id: str, txn_id: str, refund_id: str, member_id: str | None,
                sale_detail: Mapping[str, Any], returned: Mapping[str, int],
                detail: Mapping[str, Any], points: int, now: datetime) -> dict[str, Any]:
    """The summary of a refund: the returned units, priced as the sale priced them."""
    quote = sale_detail.get("quote") or {}
    cats = {str(ln.get("sku")): str(ln.get("category", ""))
            for ln in (sale_detail.get("basket") or [])}
    per_sku: dict[str, list[int]] = {}  # sku -> [qty, amount, discount, points]
    try:
        for e in quote.get("effects", ()):
            row = per_sku.setdefault(str(e["sku"]), [0, 0, 0, 0])
            row[0] += int(e["qty"])
            row[1] += int(e["amount"])
            row[2] += int(e.get("discount", 0)) + int(e.get("redeem_value", 0))
            row[3] += max(0, int(e.get("points", 0)))
    except (KeyError, TypeError, ValueError, AttributeError):
        per_sku = {}  # a damaged stored quote: the units go to central without prices
    lines = []
    for sku, units in sorted(returned.items()):
        qty, amount, discount, pts = per_sku.get(sku, [units, 0, 0, 0])
        share = min(units, qty) if qty else 0
        lines.append({"sku": _clean(sku), "category": _clean(cats.get(sku, "")), "qty": units,
                      "amount": amount * share // qty if qty else 0,
                      "discount": discount * share // qty if qty else 0,
                      "points": -(-pts * share // qty) if qty else 0})  # as taken back
    return {
        "kind": "refund", "pos_id": pos_id, "txn_id": txn_id, "refund_id": refund_id,
        "member_id": member_id, "terminal_time": now.isoformat(),
        "basket_total": sum(ln["amount"] for ln in lines),
        "discount_total": sum(ln["discount"] for ln in lines),
        "paid_total": max(0, int(detail.get("money_refund", 0))),
        "points_earned": max(0, int(detail.get("points_reversed", 0))),
        "points_redeemed": max(0, int(detail.get("points_recredited", 0))),
        "points": points, "coupons": [], "lines": lines}


def void_body(*, pos_id: str, txn_id: str, member_id: str | None, basket: Basket | None,
              now: datetime) -> dict[str, Any]:
    """The summary of a void: the basket the till dropped, nothing paid or earned."""
    lines = [] if basket is None else [
        {"sku": _clean(ln.sku), "category": _clean(ln.category), "qty": ln.qty,
         "amount": ln.amount, "discount": 0, "points": 0} for ln in basket.lines]
    return {
        "kind": "void", "pos_id": pos_id, "txn_id": txn_id, "refund_id": "",
        "member_id": member_id, "terminal_time": now.isoformat(),
        "basket_total": sum(ln["amount"] for ln in lines), "discount_total": 0,
        "paid_total": 0, "points_earned": 0, "points_redeemed": 0, "points": 0,
        "coupons": [], "lines": lines}


def add(conn: Connection, body: Mapping[str, Any], now: datetime) -> None:
    """Queue a summary (in the caller's transaction: the sale's own)."""
    conn.execute(insert(SaleSummary).values(
        kind=body["kind"], pos_id=body["pos_id"], txn_id=body["txn_id"],
        refund_id=body["refund_id"], created_at=now,
        body=json.dumps(body, sort_keys=True, separators=(",", ":")), pushed=False))


def record_void(engine: Engine, body: Mapping[str, Any], now: datetime) -> None:
    """Queue a void's summary on its own (a void writes nothing else)."""
    with write(engine, f"recording void {body['txn_id']}") as conn:
        add(conn, body, now)


def unpushed(engine: Engine, limit: int = MAX_PUSH) -> list[PendingSummary]:
    """The oldest summaries central has not acknowledged, oldest first."""
    stmt = (select(SaleSummary.id, SaleSummary.body).where(SaleSummary.pushed.is_(False))
            .order_by(SaleSummary.id).limit(limit))
    with read(engine, "reading the sales outbox") as conn:
        return [PendingSummary(int(i), json.loads(b)) for i, b in conn.execute(stmt)]


def mark_pushed(engine: Engine, ids: Sequence[int]) -> None:
    """Mark summaries central answered for (call only with ids from its answer)."""
    if not ids:
        return
    with write(engine, "marking sales pushed") as conn:
        for i in range(0, len(ids), 500):
            conn.execute(update(SaleSummary).where(SaleSummary.id.in_(ids[i:i + 500]))
                         .values(pushed=True))
