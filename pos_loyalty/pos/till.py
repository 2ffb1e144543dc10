"""A reference till: the POS side of the protocol, for tests, the demo and integrators.

It speaks through a real :class:`~pos_loyalty.pos.transport.SerialEndpoint` (role "till"),
sends the till's requests and waits for the terminal's answer (application reply timer, 5 s
by default). Being a tool for scripts and integrators, it takes and returns messages as the
plain JSON objects a vendor sees on the wire, each checked against its message class.
Messages the terminal sends unprompted (member.identified, member.unknown, card.refused)
wait in an inbox for :meth:`SimulatedTill.next_message`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from pos_loyalty.errors import SerialLinkError
from pos_loyalty.pos.link import Timers
from pos_loyalty.pos.messages import REPLIES, UNSET, Message, Unset, message_from_dict
from pos_loyalty.pos.transport import SerialEndpoint

log = logging.getLogger(__name__)

REPLY_TIMEOUT = 5.0
"""The protocol's application reply timer, in seconds."""
INBOX_LIMIT = 1000


class SimulatedTill:
    """The till end of the link, driven from Python."""

    def __init__(self, url: str, *, pos_id: str = "POS-1", baudrate: int = 115200,
                 reply_timeout: float = REPLY_TIMEOUT, timers: Timers | None = None) -> None:
        self.pos_id = pos_id
        self.reply_timeout = reply_timeout
        self._inbox: deque[dict[str, Any]] = deque()
        self._cond = threading.Condition()
        self.endpoint = SerialEndpoint(url, self._on_message, role="till", baudrate=baudrate,
                                       peer_id=pos_id, timers=timers)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Open the port and say hello; SerialLinkError if the port cannot be opened."""
        self.endpoint.start()

    def close(self) -> None:
        self.endpoint.close()

    def __enter__(self) -> SimulatedTill:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def link_up(self) -> bool:
        return self.endpoint.link_up

    def wait_link_up(self, timeout: float = 5.0) -> None:
        """Block until the hello is exchanged; SerialLinkError on timeout."""
        deadline = time.monotonic() + timeout
        while not self.endpoint.link_up:
            if time.monotonic() >= deadline:
                raise SerialLinkError(f"no hello from the terminal within {timeout:g} s")
            time.sleep(0.01)

    # -- inbox -----------------------------------------------------------------------------

    def _on_message(self, typed: Message) -> None:
        message = typed.to_dict()
        with self._cond:
            if len(self._inbox) >= INBOX_LIMIT:
                dropped = self._inbox.popleft()
                log.warning("till inbox full; dropped unread %s", dropped.get("type"))
            self._inbox.append(message)
            self._cond.notify_all()

    def _take(self, want: Any, timeout: float, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i, msg in enumerate(self._inbox):
                    if want(msg):
                        del self._inbox[i]
                        return msg
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SerialLinkError(f"no {what} from the terminal within {timeout:g} s")
                self._cond.wait(left)

    def next_message(self, types: set[str] | None = None,
                     timeout: float = 5.0) -> dict[str, Any]:
        """The oldest received message (of one of ``types``); SerialLinkError on timeout."""
        what = " or ".join(sorted(types)) if types else "message"
        return self._take(lambda m: types is None or m.get("type") in types, timeout, what)

    def pending_messages(self) -> list[dict[str, Any]]:
        """Messages received and not yet taken (a copy)."""
        with self._cond:
            return list(self._inbox)

    # -- requests --------------------------------------------------------------------------

    def request(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """Send a till request and return the terminal's answer to it (or its error)."""
        msg = dict(message)
        mtype = str(msg.get("type"))
        replies = REPLIES.get(mtype)
        if replies is None:
            raise ValueError(f"{mtype!r} is not a till request")
        txn_id = msg.get("txn_id")
        self.endpoint.send(message_from_dict(msg, "till", remote=False))

        def is_reply(m: dict[str, Any]) -> bool:
            if m.get("type") not in replies:
                return False
            return m.get("txn_id") in (txn_id, None) if m.get("type") == "error" \
                else m.get("txn_id") == txn_id

        return self._take(is_reply, self.reply_timeout,
                          f"answer to {mtype} {txn_id}")

    def _txn(self, mtype: str, txn_id: str, **fields: Any) -> dict[str, Any]:
        return self.request({"type": mtype, "pos_id": self.pos_id, "txn_id": txn_id, **fields})

    def send_basket(self, txn_id: str, lines: Iterable[Mapping[str, Any]],
                    member_id: str | Unset | None = UNSET) -> dict[str, Any]:
        """basket.update -> the quote (lines: sku, qty, unit_price, category).

        ``member_id``: the member the sale is for (one the terminal identified), None for
        nobody; left out, the terminal binds the member tapped since (protocol 6.4).
        """
        fields: dict[str, Any] = {"lines": [dict(x) for x in lines]}
        if not isinstance(member_id, Unset):
            fields["member_id"] = member_id
        return self._txn("basket.update", txn_id, **fields)

    def redeem(self, txn_id: str, points: int) -> dict[str, Any]:
        """redeem.request -> the new quote; 0 points cancels the redemption."""
        return self._txn("redeem.request", txn_id, points=points)

    def present_coupon(self, txn_id: str, code: str) -> dict[str, Any]:
        """coupon.present -> the quote with the coupon's line (or error, saying why)."""
        return self._txn("coupon.present", txn_id, code=code)

    def commit(self, txn_id: str) -> dict[str, Any]:
        """txn.commit -> points.awarded (or error); repeating it returns the same answer."""
        return self._txn("txn.commit", txn_id)

    def void(self, txn_id: str) -> dict[str, Any]:
        """txn.void -> txn.status."""
        return self._txn("txn.void", txn_id)

    def refund(self, txn_id: str, refund_id: str,
               lines: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
        """refund -> points.awarded with the reversed points (lines: sku, qty)."""
        return self._txn("refund", txn_id, refund_id=refund_id, lines=[dict(x) for x in lines])

    def status(self, txn_id: str) -> dict[str, Any]:
        """txn.status -> what the terminal knows of the transaction."""
        return self._txn("txn.status", txn_id)
