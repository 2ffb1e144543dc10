"""What the terminal answers: taps become till messages, till requests become replies.

Holds the store and the program; the pure parts (session, rules) do the deciding. Every
reply is a message dict as in docs/pos-protocol.md; errors become an ``error`` message the
till can show, never an exception on the link.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pos_loyalty.errors import LoyaltyError, RulesError, StoreError
from pos_loyalty.nfc.events import TapEvent
from pos_loyalty.rules import DEFAULT_PROGRAM, Basket, BasketLine, MemberView, Program, quote
from pos_loyalty.store import LocalStore, MemberRecord
from pos_loyalty.terminal.session import OpenTxn, TillSession

log = logging.getLogger(__name__)

Message = dict[str, Any]


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def error_message(code: str, text: str, msg: Message | None = None) -> Message:
    reply: Message = {"type": "error", "code": code, "message": text}
    if msg is not None:
        for key in ("pos_id", "txn_id"):
            if isinstance(msg.get(key), str):
                reply[key] = msg[key]
    return reply


class TerminalService:
    """The terminal's application logic between the reader, the store and the till."""

    def __init__(
        self, store: LocalStore, program: Program = DEFAULT_PROGRAM, *,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.store = store
        self.program = program
        self.clock = clock
        self.session = TillSession()
        self._handlers: dict[str, Callable[[Message], Message]] = {
            "basket.update": self._on_basket,
            "txn.commit": self._on_commit,
            "txn.void": self._on_void,
            "txn.status": self._on_status,
        }

    # -- taps ------------------------------------------------------------------------------

    def on_tap(self, tap: TapEvent) -> Message:
        """The message the till gets for this tap."""
        if tap.kind == "refused":
            return {"type": "card.refused", "uid": tap.uid,
                    "reason": tap.reason or "card not accepted"}
        if tap.kind == "product":
            return {"type": "card.refused", "uid": tap.uid,
                    "reason": "this is a product tag, not a member card"}
        member = self._lookup(tap)
        if member is None:
            return {"type": "member.unknown", "card_id": tap.card_id or "",
                    "reason": "card not registered at this store"}
        if member.card_status != "active":
            return {"type": "card.refused", "uid": tap.uid,
                    "reason": f"card {member.card_id} is {member.card_status}"}
        self.session.identify(member)
        tap_ms = (time.perf_counter() - tap.read_done) * 1000 if tap.read_done else 0.0
        return {
            "type": "member.identified", "card_id": member.card_id,
            "member_id": member.member_id, "name": member.display_name, "tier": member.tier,
            "balance": member.balance, "discounts": self._standing_discounts(member),
            "tap_ms": round(tap_ms, 3),
        }

    def _lookup(self, tap: TapEvent) -> MemberRecord | None:
        if tap.card_id:
            return self.store.find_by_card(tap.card_id)
        return self.store.find_by_uid(tap.uid)

    def _standing_discounts(self, member: MemberRecord) -> list[str]:
        view = self._member_view(member)
        probe = quote(view, Basket(lines=(BasketLine("_probe", 1, 10_000),)), self.clock(),
                      self.program)
        return [line.text for line in probe.lines if line.kind == "discount"]

    # -- till requests ---------------------------------------------------------------------

    def on_message(self, msg: Message) -> Message:
        """The reply to one request from the till."""
        handler = self._handlers.get(str(msg.get("type")))
        if handler is None:
            return error_message("unsupported", f"message type {msg.get('type')!r} is not "
                                 "handled by this terminal", msg)
        try:
            return handler(msg)
        except RulesError as exc:
            return error_message("bad_basket", str(exc), msg)
        except StoreError as exc:
            log.error("store error on %s: %s", msg.get("type"), exc)
            return error_message("store", "the loyalty store is unavailable; sale not "
                                 "recorded for points, please retry", msg)
        except LoyaltyError as exc:
            return error_message("refused", str(exc), msg)

    def _on_basket(self, msg: Message) -> Message:
        basket = Basket(lines=tuple(
            BasketLine(sku=str(line["sku"]), qty=int(line["qty"]),
                       unit_price=int(line["unit_price"]), category=str(line.get("category", "")))
            for line in msg["lines"]
        ))
        txn = self.session.open_txn(msg["pos_id"], msg["txn_id"])
        txn.basket = basket
        if txn.member is not None:  # the balance may have moved since the tap
            txn.member = self.store.find_by_card(txn.member.card_id) or txn.member
        txn.quote = quote(self._member_view(txn.member), basket, self.clock(), self.program)
        return self._quote_message(txn)

    def _quote_message(self, txn: OpenTxn) -> Message:
        assert txn.quote is not None
        q = txn.quote
        return {
            "type": "quote", "pos_id": txn.pos_id, "txn_id": txn.txn_id,
            "member_id": txn.member.member_id if txn.member else None,
            "lines": [{"program": ln.program, "kind": ln.kind, "value": ln.value,
                       "text": ln.text} for ln in q.lines],
            "discount_total": q.discount_total, "points_total": q.points_total,
            "total_due": q.total_due, "summary": q.summary,
        }

    def _on_commit(self, msg: Message) -> Message:
        pos_id, txn_id = msg["pos_id"], msg["txn_id"]
        txn = self.session.find(pos_id, txn_id)
        if txn is None or txn.quote is None:
            prior = self.store.find_sale(pos_id, txn_id)
            if prior is None:
                return error_message("unknown_txn", f"no basket was sent for transaction "
                                     f"{txn_id}; send basket.update first", msg)
            result = prior
        else:
            member_id = txn.member.member_id if txn.member else None
            result = self.store.commit_sale(
                pos_id=pos_id, txn_id=txn_id, member_id=member_id,
                basket_total=txn.quote.basket_total, discount_total=txn.quote.discount_total,
                points=txn.quote.points_total if member_id else 0, now=self.clock(),
                detail={"summary": txn.quote.summary},
            )
            self.session.close(pos_id, txn_id)
        return {
            "type": "points.awarded", "pos_id": pos_id, "txn_id": txn_id,
            "member_id": result.member_id, "points": result.points,
            "balance_before": result.balance_after - result.points,
            "balance_after": result.balance_after, "repeated": result.repeated,
        }

    def _on_void(self, msg: Message) -> Message:
        pos_id, txn_id = msg["pos_id"], msg["txn_id"]
        if self.store.find_sale(pos_id, txn_id) is not None:
            return error_message("committed", f"transaction {txn_id} is committed; "
                                 "use refund to reverse it", msg)
        txn = self.session.close(pos_id, txn_id)
        return {"type": "txn.status", "pos_id": pos_id, "txn_id": txn_id,
                "state": "voided" if txn is not None else "unknown",
                "points": 0, "balance_after": 0}

    def _on_status(self, msg: Message) -> Message:
        pos_id, txn_id = msg["pos_id"], msg["txn_id"]
        sale = self.store.find_sale(pos_id, txn_id)
        if sale is not None:
            return {"type": "txn.status", "pos_id": pos_id, "txn_id": txn_id,
                    "state": "committed", "points": sale.points,
                    "balance_after": sale.balance_after}
        txn = self.session.find(pos_id, txn_id)
        return {"type": "txn.status", "pos_id": pos_id, "txn_id": txn_id,
                "state": "open" if txn is not None else "unknown", "points": 0,
                "balance_after": 0}

    @staticmethod
    def _member_view(member: MemberRecord | None) -> MemberView:
        if member is None:
            return MemberView(member_id="")
        return MemberView(member_id=member.member_id, balance=member.balance, tier=member.tier,
                          lifetime_spend=member.lifetime_spend, visits=member.visits)
