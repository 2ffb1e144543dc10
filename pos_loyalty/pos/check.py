"""Conformance checker: plays the terminal against a vendor's till and reports broken rules.

It talks raw frames (the codec, not the Link) so it can send what a correct terminal never
would: bad CRCs, truncated frames, frames without STX, out-of-sequence numbers, data before the
hello. Each check maps to a rule of docs/pos-protocol.md and ends PASS, FAIL or SKIP.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import serial

from pos_loyalty.errors import RemoteProtocolError, SerialLinkError
from pos_loyalty.pos import jsontext
from pos_loyalty.pos.codec import (
    NEED_DATA,
    Frame,
    FrameDecoder,
    FrameError,
    encode_frame,
    wire_time,
)
from pos_loyalty.pos.link import Hello
from pos_loyalty.pos.messages import decode_message, encode_message, message_from_dict

Status = Literal["PASS", "FAIL", "SKIP"]
CHECK_ID = "POS-CHECK"
CHECK_COUPON = "CHECK23456"
"""The coupon code the checker asks the cashier to present (any till that takes codes)."""


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one rule."""

    rule: str
    status: Status
    detail: str = ""


@dataclass
class _Wire:
    """The raw port plus a decoder; answers the till's pings once the link is up."""

    port: serial.SerialBase
    baudrate: int
    decoder: FrameDecoder = field(default_factory=FrameDecoder)
    up: bool = False
    damaged: list[str] = field(default_factory=list)
    seen: list[Frame] = field(default_factory=list)

    def send(self, data: bytes) -> None:
        try:
            self.port.write(data)
        except (serial.SerialException, OSError) as exc:
            raise SerialLinkError(f"write to the till failed: {exc}") from exc

    def recv(self, want: Callable[[Frame], bool], timeout: float) -> Frame | None:
        """The first frame from the till matching ``want`` within ``timeout``, or None."""
        deadline = time.monotonic() + timeout
        while True:
            while True:
                try:
                    frame = self.decoder.next_event()
                except FrameError as err:
                    self.damaged.append(err.reason)
                    continue
                if frame is NEED_DATA:
                    break
                self.seen.append(frame)
                if self.up and frame.kind == "P" and not want(frame):
                    self.send(encode_frame(Frame("A", frame.seq)))
                    continue
                if want(frame):
                    return frame
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                data = self.port.read(int(getattr(self.port, "in_waiting", 0)) or 1)
            except (serial.SerialException, OSError) as exc:
                raise SerialLinkError(f"read from the till failed: {exc}") from exc
            if data:
                self.decoder.receive_data(data)


def _hello_request(frame: Frame) -> bool:
    return frame.kind == "H" and b'"reply":true' not in frame.payload.replace(b" ", b"")


def _kind(kind: str, seq: int | None = None) -> Callable[[Frame], bool]:
    return lambda f: f.kind == kind and (seq is None or f.seq == seq)


def _nak_code(frame: Frame) -> str:
    try:
        doc = jsontext.loads(frame.payload)
    except jsontext.JsonTextError:
        return "?"
    return str(doc.get("code", "?")) if isinstance(doc, dict) else "?"


class ConformanceChecker:
    """Runs the checks of docs/pos-protocol.md section 9 against the till on ``url``."""

    def __init__(self, url: str, *, baudrate: int = 115200, hello_wait: float = 15.0,
                 sale_wait: float = 60.0, say: Callable[[str], None] = print) -> None:
        self.url = url
        self.baudrate = baudrate
        self.hello_wait = hello_wait
        self.sale_wait = sale_wait
        self.say = say
        self.results: list[CheckResult] = []
        self._seq = 0

    def _ack_wait(self, n: int = 300) -> float:
        return wire_time(n, self.baudrate) + 1.0 + 0.5  # protocol ACK wait plus slack

    def _result(self, rule: str, ok: bool | None, detail: str = "") -> None:
        status: Status = "SKIP" if ok is None else "PASS" if ok else "FAIL"
        res = CheckResult(rule, status, detail)
        self.results.append(res)
        self.say(f"{status:4}  {rule}" + (f": {detail}" if detail else ""))

    def _data(self, seq: int, message: dict[str, Any]) -> bytes:
        typed = message_from_dict(message, "terminal", remote=False)
        return encode_frame(Frame("D", seq, encode_message(typed, "terminal")))

    def _notice(self, n: int) -> dict[str, Any]:
        return {"type": "member.unknown", "card_id": f"{CHECK_ID}-{n}",
                "reason": "conformance check, please ignore"}

    def run(self) -> list[CheckResult]:
        """Open the port, run every check, close; SerialLinkError if the port fails."""
        try:
            port = serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=0.05,
                                         exclusive=True)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise SerialLinkError(f"cannot open serial port {self.url}: {exc}") from exc
        try:
            self._run(_Wire(port, self.baudrate))
        finally:
            port.close()
        return self.results

    def _run(self, w: _Wire) -> None:
        self.say(f"waiting up to {self.hello_wait:g} s for the till's hello on {self.url} ...")
        hello = w.recv(_hello_request, self.hello_wait)
        if hello is None:
            self._result("sends a hello request when it starts", None,
                         "none seen (normal if the till was already running)")
        else:
            self._check_hello(hello, "sends a valid hello request")
            w.send(self._data(0, self._notice(0)))
            nak = w.recv(lambda f: f.kind in "NA", self._ack_wait())
            self._result("NAKs data before the hello (nohello)",
                         nak is not None and nak.kind == "N" and _nak_code(nak) == "nohello",
                         "no answer" if nak is None else
                         f"answered {nak.kind} {_nak_code(nak) if nak.kind == 'N' else ''}")
        w.send(encode_frame(Frame("H", 0, Hello((1,), 2048, "terminal", CHECK_ID).to_payload())))
        reply = w.recv(lambda f: (f.kind == "H" and not _hello_request(f)) or f.kind == "N",
                       self._ack_wait())
        if reply is None or reply.kind != "H":
            self._result("answers a hello request with a hello reply", False,
                         "no reply" if reply is None else f"answered {reply.kind}")
        else:
            self._check_hello(reply, "answers a hello request with a hello reply")
        w.up = True
        self._frame_checks(w)
        self._sale_checks(w)
        self._binding_checks(w)
        self._phone_checks(w)
        self._result("sends only well-formed frames", not w.damaged,
                     "; ".join(sorted(set(w.damaged)))[:300])

    def _check_hello(self, frame: Frame, rule: str) -> None:
        try:
            hello = Hello.from_payload(frame.payload)
        except ValueError as exc:
            self._result(rule, False, str(exc))
            return
        problems = []
        if hello.role != "till":
            problems.append(f"role is {hello.role!r}, expected 'till'")
        if 1 not in hello.versions:
            problems.append(f"versions {list(hello.versions)} lack 1")
        if frame.seq != 0:
            problems.append(f"sequence {frame.seq:02X}, expected 00")
        self._result(rule, not problems, "; ".join(problems) or f"id {hello.id!r}")

    def _frame_checks(self, w: _Wire) -> None:
        wait = self._ack_wait()
        w.send(encode_frame(Frame("P", 0xFF)))
        self._result("answers a ping with an ACK of the same number",
                     w.recv(_kind("A", 0xFF), wait) is not None)

        good = bytearray(self._data(0, self._notice(1)))
        good[-2] = ord("0") if good[-2] != ord("0") else ord("1")
        w.send(bytes(good))
        ans = w.recv(lambda f: f.kind in "AN", wait)
        self._result("NAKs a frame with a bad CRC", ans is not None and ans.kind == "N",
                     "no answer" if ans is None else
                     f"code {_nak_code(ans)}" if ans.kind == "N" else "it was ACKed!")

        w.send(self._data(0, self._notice(2))[:20] + encode_frame(Frame("P", 0xFE)))
        nak = w.recv(_kind("N"), wait)
        ack = w.recv(_kind("A", 0xFE), wait)
        self._result("NAKs a truncated frame and reads the next one", nak is not None and
                     ack is not None, ("" if nak else "no NAK; ") + ("" if ack else "no ACK"))

        w.send(self._data(0, self._notice(3))[1:])
        nak = w.recv(_kind("N"), wait)
        self._result("NAKs a frame whose STX was lost", nak is not None,
                     f"code {_nak_code(nak)}" if nak else "no NAK")

        w.send(self._data(5, self._notice(4)))
        ans = w.recv(lambda f: f.kind in "AN", wait)
        self._result("NAKs a data frame out of sequence (seq)",
                     ans is not None and ans.kind == "N" and _nak_code(ans) == "seq",
                     "no answer" if ans is None else f"answered {ans.kind} {_nak_code(ans)}")

        first = self._data(0, self._notice(5))
        w.send(first)
        ok0 = w.recv(_kind("A", 0), wait) is not None
        self._result("ACKs a data frame with the expected number", ok0)
        w.send(first)
        again = w.recv(lambda f: f.kind in "AN", wait)
        self._result("ACKs a repeated data frame again", again is not None and
                     again.kind == "A" and again.seq == 0,
                     "no answer" if again is None else f"answered {again.kind}{again.seq:02X}")
        w.send(self._data(1, self._notice(6)))
        ok1 = w.recv(_kind("A", 1), wait) is not None
        self._result("a repeat does not advance the expected number", ok1)
        self._seq = 2

    def _sale_checks(self, w: _Wire) -> None:
        self.say(f"ring up a sale on the till now (add an item), waiting up to "
                 f"{self.sale_wait:g} s ...")
        basket = w.recv(_kind("D"), self.sale_wait)
        if basket is None:
            for rule in ("sends valid data frames and messages",
                         "retransmits at once when NAKed, same number",
                         "retransmits after the ACK wait when unanswered"):
                self._result(rule, None, "no data frame from the till")
            return
        msg = self._message(basket)
        self._result("numbers its first data frame 00", basket.seq == 0, f"got {basket.seq:02X}")
        w.send(encode_frame(Frame("N", basket.seq, b'{"code":"crc"}')))
        t0 = time.monotonic()
        again = w.recv(_kind("D"), self._ack_wait())
        self._result("retransmits at once when NAKed, same number",
                     again is not None and again.seq == basket.seq
                     and again.payload == basket.payload,
                     "no retransmission" if again is None else
                     f"after {time.monotonic() - t0:.2f} s, seq {again.seq:02X}")
        t0 = time.monotonic()
        third = w.recv(_kind("D"), self._ack_wait() + 1.0)
        delay = time.monotonic() - t0
        self._result("retransmits after the ACK wait when unanswered",
                     third is not None and third.seq == basket.seq and delay >= 0.5,
                     "no retransmission" if third is None else f"after {delay:.2f} s")
        w.send(encode_frame(Frame("A", basket.seq)))
        if msg is not None and msg["type"] == "basket.update":
            self._answer(w, msg)
        self.say(f"now finish (commit) the sale on the till, waiting up to {self.sale_wait:g} s")
        nxt = w.recv(lambda f: f.kind == "D" and f.seq != basket.seq, self.sale_wait)
        if nxt is None:
            self._result("numbers its next data frame +1", None, "no further data frame")
            return
        self._result("numbers its next data frame +1", nxt.seq == (basket.seq + 1) % 256,
                     f"got {nxt.seq:02X}")
        w.send(encode_frame(Frame("A", nxt.seq)))
        msg = self._message(nxt)
        if msg is not None:
            self._answer(w, msg)

    # -- member binding (section 6.4) ----------------------------------------------------

    def _send_message(self, w: _Wire, message: dict[str, Any]) -> bool:
        """Send one terminal message; True once the till ACKed it."""
        seq = self._seq
        w.send(self._data(seq, message))
        ok = w.recv(_kind("A", seq), self._ack_wait()) is not None
        self._seq = (seq + 1) % 256
        return ok

    def _next_request(self, w: _Wire, timeout: float) -> dict[str, Any] | None:
        """The till's next request (ACKed), or None if none came or it was invalid."""
        deadline = time.monotonic() + timeout
        last = -1
        while (left := deadline - time.monotonic()) > 0:
            frame = w.recv(_kind("D"), left)
            if frame is None:
                return None
            w.send(encode_frame(Frame("A", frame.seq)))
            if frame.seq == last:
                continue  # a retransmission of what we already have
            last = frame.seq
            try:
                return decode_message(frame.payload, "till").to_dict()
            except RemoteProtocolError as exc:
                self._result("sends valid data frames and messages", False, exc.reason)
                return None
        return None

    def _identified(self, w: _Wire, member_id: str, name: str) -> None:
        self._send_message(w, {
            "type": "member.identified", "card_id": f"{CHECK_ID}-{member_id}",
            "member_id": member_id, "name": name, "tier": None, "balance": 1000,
            "discounts": [], "tap_ms": 1.0})

    def _quote(self, msg: dict[str, Any], member_id: str | None) -> dict[str, Any]:
        total = sum(x["qty"] * x["unit_price"] for x in msg.get("lines", []))
        points = 0 if member_id is None else total // 100
        return {"type": "quote", "pos_id": msg["pos_id"], "txn_id": msg["txn_id"],
                "member_id": member_id, "lines": [], "discount_total": 0,
                "points_total": points, "total_due": total,
                "summary": f"conformance check: +{points} pts"}

    def _binding_checks(self, w: _Wire) -> None:
        """Who a sale is for: the till names the member it shows, decides when a second
        member taps, starts afresh after a commit, takes a member off, cancels a
        redemption. Each step waits for the cashier; a step nobody does is a SKIP."""
        a, b, c = "M-CHECK-A", "M-CHECK-B", "M-CHECK-C"
        wait = self.sale_wait
        self._identified(w, a, "Check Member A")
        self.say(f"member A tapped: ring up a new sale for them (add an item), waiting up "
                 f"to {wait:g} s ...")
        msg = self._next_request(w, wait)
        if msg is None or msg["type"] != "basket.update":
            self._result("names the member it shows in basket.update (6.4)", None,
                         "no basket" if msg is None else f"got {msg['type']}")
            return
        txn_id = msg["txn_id"]
        self._result("names the member it shows in basket.update (6.4)",
                     msg.get("member_id", "(left out)") == a,
                     f"member_id {msg.get('member_id', '(left out)')!r}, expected {a!r}")
        bound: str | None = a
        self._send_message(w, self._quote(msg, bound))
        self._identified(w, b, "Check Member B")
        self.say(f"member B tapped during the sale: commit it on the till (and choose the "
                 f"member when asked), waiting up to {wait:g} s ...")
        asked = False
        decided: bool | None = None
        for _ in range(6):
            msg = self._next_request(w, wait)
            if msg is None:
                break
            if msg["type"] == "basket.update" and "member_id" in msg:
                bound = msg["member_id"]
                self._send_message(w, self._quote(msg, bound))
                decided = True
            elif msg["type"] == "txn.commit" and decided is None:
                asked = True  # committed without choosing: ask, as the terminal does
                decided = False
                self._send_message(w, {
                    "type": "error", "code": "member_changed", "pos_id": msg["pos_id"],
                    "txn_id": msg["txn_id"], "message": "Check Member B (M-CHECK-B) tapped "
                    "after the sale was quoted for Check Member A: choose the member"})
            elif msg["type"] == "txn.commit":
                self._send_message(w, {
                    "type": "points.awarded", "pos_id": msg["pos_id"],
                    "txn_id": msg["txn_id"], "member_id": bound, "points": 0,
                    "balance_before": None if bound is None else 1000,
                    "balance_after": None if bound is None else 1000, "repeated": False})
                break
            else:
                self._send_message(w, self._quote(msg, bound))
        self._result("after a second member's tap, names the member before the sale is "
                     "committed (6.4)", decided,
                     "no commit" if decided is None else
                     f"sale for {bound!r}" + (" after member_changed" if asked else "")
                     if decided else "committed again without naming the member")
        if not decided:
            return
        self._identified(w, c, "Check Member C")
        self.say(f"member C tapped after the commit: ring up the next sale (add an item), "
                 f"waiting up to {wait:g} s ...")
        msg = self._next_request(w, wait)
        if msg is None or msg["type"] != "basket.update":
            self._result("a tap after a commit starts a new sale for that member (6.4)", None,
                         "no basket")
            return
        self._result("a tap after a commit starts a new sale for that member (6.4)",
                     msg["txn_id"] != txn_id and msg.get("member_id") == c,
                     f"sale {msg['txn_id']} for {msg.get('member_id', '(left out)')!r}")
        self._send_message(w, self._quote(msg, c))
        self.say(f"redeem points on this sale, then cancel the redemption, then take the "
                 f"member off the sale, waiting up to {wait:g} s ...")
        redeemed = cancelled = taken_off = False
        while not taken_off:
            msg = self._next_request(w, wait)
            if msg is None:
                break
            if msg["type"] == "redeem.request":
                redeemed = redeemed or msg["points"] > 0
                cancelled = cancelled or (redeemed and msg["points"] == 0)
            elif msg["type"] == "basket.update" and msg.get("member_id", c) is None:
                taken_off = True
            self._send_message(w, self._quote(msg, None if taken_off else c))
        self._result("cancels a redemption with redeem.request points 0 (6.4)",
                     cancelled if redeemed else None,
                     "" if cancelled or not redeemed else "no redeem.request with points 0")
        self._result("takes a member off with basket.update member_id null (6.4)",
                     taken_off or None, "" if taken_off else "not seen")

    # -- product tags, coupons, the receipt's link (section 6.5) --------------------------

    def _phone_checks(self, w: _Wire) -> None:
        """A product tap notice is taken; the cashier presents a coupon code on a sale and
        commits it; points.awarded with the receipt's visit link is taken."""
        ok = self._send_message(w, {
            "type": "product.tapped", "uid": "04C0FFEE0000AA", "sku": f"{CHECK_ID}-ITEM",
            "linked": False, "member_id": None, "pos_id": None, "txn_id": None,
            "text": "conformance check, please ignore"})
        self._result("ACKs product.tapped (6.5)", ok)
        wait = self.sale_wait
        self.say(f"present the coupon code {CHECK_COUPON} on a sale (add an item first), "
                 f"then commit the sale, waiting up to {wait:g} s ...")
        presented: bool | None = None
        awarded: bool | None = None
        detail = "no coupon.present"
        for _ in range(10):
            msg = self._next_request(w, wait)
            if msg is None:
                break
            mtype = msg["type"]
            if mtype == "error":
                continue  # a till before 6.5 may call product.tapped invalid
            if mtype == "coupon.present":
                presented = msg["code"] == CHECK_COUPON
                detail = f"code {msg['code']!r}"
                quote = self._quote(msg, None)
                quote["lines"] = [{"program": CHECK_ID, "kind": "discount", "value": 0,
                                   "text": f"coupon {msg['code']}: conformance check"}]
                self._send_message(w, quote)
            elif mtype == "txn.commit":
                awarded = self._send_message(w, {
                    "type": "points.awarded", "pos_id": msg["pos_id"],
                    "txn_id": msg["txn_id"], "member_id": None, "points": 0,
                    "balance_before": None, "balance_after": None, "repeated": False,
                    "visit_url": "https://shop.example/v/0193f1c2a4b87d3e9c1f5a2b3c4d5e6f"})
                break
            elif mtype in ("basket.update", "redeem.request"):
                self._send_message(w, self._quote(msg, None))
            else:
                self._send_message(w, {"type": "txn.status", "pos_id": msg["pos_id"],
                                       "txn_id": msg["txn_id"], "state": "unknown",
                                       "points": 0, "balance_after": None})
        self._result("presents a coupon code with coupon.present (6.5)", presented,
                     detail if presented is not None else "not seen (a till without "
                     "coupons)")
        self._result("ACKs points.awarded carrying a visit_url (6.5)", awarded,
                     "" if awarded is not None else "no commit")

    def _message(self, frame: Frame) -> dict[str, Any] | None:
        try:
            msg = decode_message(frame.payload, "till").to_dict()
        except RemoteProtocolError as exc:
            self._result("sends valid data frames and messages", False, exc.reason)
            return None
        self._result("sends valid data frames and messages", True, str(msg["type"]))
        return msg

    def _answer(self, w: _Wire, msg: dict[str, Any]) -> None:
        """Answer a till request like a terminal would, and check the till ACKs it."""
        txn = {"pos_id": msg["pos_id"], "txn_id": msg["txn_id"]}
        mtype = msg["type"]
        answer: dict[str, Any]
        if mtype in ("basket.update", "redeem.request"):
            total = sum(x["qty"] * x["unit_price"] for x in msg.get("lines", []))
            answer = {"type": "quote", **txn, "member_id": None, "lines": [],
                      "discount_total": 0, "points_total": 0, "total_due": total,
                      "summary": "conformance check: no loyalty"}
        elif mtype in ("txn.commit", "refund"):
            answer = {"type": "points.awarded", **txn, "member_id": None, "points": 0,
                      "balance_before": None, "balance_after": None, "repeated": False}
        else:
            answer = {"type": "txn.status", **txn, "state": "unknown", "points": 0,
                      "balance_after": None}
        seq = self._seq
        w.send(self._data(seq, answer))
        ok = w.recv(_kind("A", seq), self._ack_wait()) is not None
        self._seq = (seq + 1) % 256
        self._result(f"ACKs the terminal's {answer['type']}", ok)
