"""Helpers for tests of code that talks to a till: a minimal terminal-side responder.

:class:`EchoTerminal` answers till requests the way the protocol requires (a quote for a
basket, points.awarded for a commit, the same answer again for a repeated commit) without any
loyalty logic: points are one per 100 minor units of the last basket. It counts what it was
delivered so a test can prove "exactly once". The real terminal daemon lives elsewhere.
:class:`RawTill` writes frames byte for byte, for tests that send what no real till would.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import serial

from pos_loyalty.pos.codec import NEED_DATA, Frame, FrameDecoder, FrameError, encode_frame
from pos_loyalty.pos.link import Hello, Timers
from pos_loyalty.pos.messages import Message, message_from_dict
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

    def _on_message(self, typed: Message) -> None:
        msg = typed.to_dict()
        key = (str(msg["type"]), str(msg.get("pos_id", "")), str(msg.get("txn_id", "")))
        with self._lock:
            self.delivered[key] += 1
            self.messages.append(msg)
            answer = self._answer(key, msg)
        if answer is not None:
            self.endpoint.send(message_from_dict(answer, "terminal", remote=False))

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


class RawTill:
    """A till that writes frames byte for byte, for tests that send what no real till would.

    It frames whatever payload it is given (nested JSON, out-of-range numbers), numbers its
    data frames itself, ACKs the terminal's data frames, and hands back every frame it reads,
    so a test sees exactly what the terminal answered on the wire.
    """

    def __init__(self, url: str, *, baudrate: int = 115200, pos_id: str = "POS-RAW") -> None:
        self.pos_id = pos_id
        self.port = serial.serial_for_url(url, baudrate=baudrate, timeout=0.05)
        self._decoder = FrameDecoder()
        self._seq = 0
        self.received: list[Frame] = []

    def close(self) -> None:
        self.port.close()

    def __enter__(self) -> RawTill:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write(self, kind: str, payload: bytes, seq: int = 0) -> None:
        """One frame on the wire (CRC and length computed; any payload up to 2048 bytes)."""
        self.port.write(encode_frame(Frame(kind, seq, payload)))

    def hello(self, timeout: float = 10.0, *, max_payload: int = 2048) -> Frame:
        """Say hello (announcing ``max_payload``) and wait for the terminal's hello reply;
        resets our data numbering."""
        self._seq = 0
        self.write("H", Hello((1,), max_payload, "till", self.pos_id).to_payload())
        return self.expect(lambda f: f.kind == "H", timeout, "a hello reply")

    def send(self, payload: bytes) -> int:
        """A data frame with the next sequence number; returns that number."""
        seq = self._seq
        self.write("D", payload, seq)
        self._seq = (seq + 1) & 0xFF
        return seq

    def request(self, payload: bytes, timeout: float = 10.0) -> dict[str, Any]:
        """Send a data frame; return the terminal's next message (ACKed) as a dict."""
        seq = self.send(payload)
        self.expect(lambda f: f.kind in "AN" and f.seq == seq, timeout, f"ACK of {seq:02X}")
        frame = self.expect(lambda f: f.kind == "D", timeout, "an answer")
        doc: dict[str, Any] = json.loads(frame.payload)
        return doc

    def expect(self, want: Callable[[Frame], bool], timeout: float, what: str) -> Frame:
        """The next frame ``want`` accepts (ACKing data frames on the way); AssertionError
        after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while True:
                try:
                    frame = self._decoder.next_event()
                except FrameError:
                    continue  # damage on the wire: the decoder has resynchronised
                if frame is NEED_DATA:
                    break
                self.received.append(frame)
                if frame.kind == "D":
                    self.write("A", b"", frame.seq)
                if want(frame):
                    return frame
            self._decoder.receive_data(self.port.read(256))
        raise AssertionError(f"no {what} from the terminal within {timeout:g} s")
