"""Small hand-made sales for report tests, stored through central's own push path."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pos_loyalty.server.central import CentralStore
from pos_loyalty.server.sales.schemas import SaleRecordCreate
from pos_loyalty.server.terminals.queries import TerminalAuth

Line = tuple[str, str, int, int]  # sku, category, qty, amount


def record(txn: str, when: datetime, member: str | None, lines: Sequence[Line], *,
           kind: str = "sale", refund_id: str = "", discount: int = 0, points: int = 0,
           redeemed: int = 0) -> SaleRecordCreate:
    total = sum(a for _, _, _, a in lines)
    body: dict[str, Any] = {
        "kind": kind, "pos_id": "P1", "txn_id": txn, "refund_id": refund_id,
        "member_id": member, "terminal_time": when.isoformat(), "basket_total": total,
        "discount_total": discount, "paid_total": total - discount,
        "points_earned": points, "points_redeemed": redeemed,
        "points": (-points if kind == "refund" else points - redeemed),
        "lines": [{"sku": s, "category": c, "qty": q, "amount": a} for s, c, q, a in lines]}
    return SaleRecordCreate.model_validate_json(json.dumps(body))


def store_sales(store: CentralStore, store_id: str,
                records: Sequence[SaleRecordCreate]) -> str:
    """Push ``records`` as one new terminal of ``store_id``; returns its terminal id."""
    tid, _ = store.add_terminal(store_id)
    out = store.push_sales(TerminalAuth(tid, store_id), records)
    assert out.statuses == ["stored"] * len(records)
    return tid
