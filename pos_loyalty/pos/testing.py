"""Helpers for tests of code that talks to a till: a minimal terminal-side responder.

:class:`EchoTerminal` answers till requests the way the protocol requires (a quote for a
basket, points.awarded for a commit, the same answer again for a repeated commit) without any
loyalty logic: points are one per 100 minor units of the last basket. It counts what it was
delivered so a test can prove "exactly once". The real terminal daemon lives elsewhere.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from pos_loyalty.pos.link import Timers
from pos_loyalty.pos.transport import SerialEndpoint


class EchoTerminal:
    """Terminal end of a link that answers every till request; not a loyalty engine."""

    def __init__(self, url: str, *, baudrate: int = 115200, terminal_id: str = "TERM-TEST",
                 balance: int = 0, timers: Timers | None = None) -> None:
        self.delivered: Counter[tuple[str, str, str]] = Counter()
        """How many times each (type, pos_id, txn_id) was delivered."""
        self.messages: list[dict[str, Any]] = []
        self.applied: Counter[tuple[str, str, str]] = Counter()
        """How many times each commit or refund changed the balance (must stay at 1)."""
        self._lock = threading.Lock()
        self._baskets: dict[tuple[str, str], int] = {}
        self._answers: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._balance = balance
        self.endpoint = SerialEndpoint(url, self._on_message, role="terminal",
                                       baudrate=baudrate, peer_id=terminal_id, timers=timers)

    def start(self) -> None:
        self.endpoint.start()

    def close(self) -> None:
        self.endpoint.close()

    def __enter__(self) -> EchoTerminal:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _on_message(self, msg: dict[str, Any]) -> None:
        key = (str(msg["type"]), str(msg.get("pos_id", "")), str(msg.get("txn_id", "")))
        with self._lock:
            self.delivered[key] += 1
            self.messages.append(msg)
            answer = self._answer(key, msg)
        if answer is not None:
            self.endpoint.send(answer)

    def _answer(self, key: tuple[str, str, str], msg: dict[str, Any]) -> dict[str, Any] | None:
        mtype, pos_id, txn_id = key
        txn = {"pos_id": pos_id, "txn_id": txn_id}
        if mtype == "basket.update":
            total = sum(int(x["qty"]) * int(x["unit_price"]) for x in msg["lines"])
            self._baskets[(pos_id, txn_id)] = total
            return {"type": "quote", **txn, "member_id": None, "lines": [],
                    "discount_total": 0, "points_total": total // 100, "total_due": total,
                    "summary": f"{total // 100} points"}
        if mtype == "redeem.request":
            total = self._baskets.get((pos_id, txn_id), 0)
            return {"type": "error", **txn, "code": "no_member",
                    "message": f"no member to redeem from (basket {total})"}
        if mtype in ("txn.commit", "refund"):
            akey = (mtype, pos_id, txn_id if mtype == "txn.commit"
                    else f"{txn_id}/{msg['refund_id']}")
            first = self._answers.get(akey)
            if first is not None:
                return {**first, "repeated": True}
            total = self._baskets.get((pos_id, txn_id), 0)
            points = total // 100 if mtype == "txn.commit" else -(total // 100)
            before = self._balance
            self._balance += points
            self.applied[akey] += 1
            answer = {"type": "points.awarded", **txn, "member_id": None, "points": points,
                      "balance_before": before, "balance_after": self._balance,
                      "repeated": False}
            self._answers[akey] = answer
            self._answers[key] = answer
            return answer
        if mtype in ("txn.void", "txn.status"):
            committed = ("txn.commit", pos_id, txn_id) in self._answers
            voided = ("txn.void", pos_id, txn_id) in self._answers or mtype == "txn.void"
            state = "voided" if voided else "committed" if committed else (
                "open" if (pos_id, txn_id) in self._baskets else "unknown")
            answer = {"type": "txn.status", **txn, "state": state, "points": 0,
                      "balance_after": self._balance}
            if mtype == "txn.void":
                self._answers[key] = answer
            return answer
        return None
