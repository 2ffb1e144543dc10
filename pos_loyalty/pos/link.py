"""Stop-and-wait link layer of the POS serial protocol v1, sans I/O.

Bytes go in with ``receive_data(data, now)``, events come out of ``next_event()``, bytes to
write come out of ``data_to_send()``; timers advance only when the caller passes ``now`` to
``tick()`` (a monotonic clock in seconds). Nothing here touches a port, a thread or a clock.

The link's whole state is one record, ``_Session`` (state, counters, peer, outstanding frame,
deadlines); two tables drive it: ``_TRANSITIONS`` (state changes) and ``_FRAME_HANDLERS``
(what each kind of frame does in each state). A missing entry is an error, as in h11.

Rules (docs/pos-protocol.md is normative):

- Each direction has its own sequence counter; a hello resets both. The first D frame after a
  hello has sequence 00, then 01 ... FF, 00 ...
- One D frame outstanding per direction. The receiver ACKs (A) an accepted frame with its
  sequence number; a repeat of the last accepted number is ACKed again and not delivered twice;
  any other number is NAKed. A NAK or a damaged inbound frame makes the sender retransmit at
  once; no answer within ``wire time + 1 s`` makes it retransmit; after 3 transmissions met
  by silence (or 10 in all) the frame is given up (``SendFailed``) and the link restarts
  with a hello.
- Damaged frames (bad CRC, truncated, oversized, STX lost) are NAKed unless they read as an
  A or N (acknowledgements are never answered).
- After 10 s without any valid frame from the peer, a ping (P, carrying our last acknowledged
  sequence number) is sent; the peer answers with A. Three unanswered pings: link down, and
  hellos are retried with backoff.
"""

from __future__ import annotations

import enum
import json
from collections import deque
from dataclasses import dataclass
from typing import Any, Final, Literal

from pos_loyalty.errors import LocalProtocolError
from pos_loyalty.pos import jsontext
from pos_loyalty.pos.codec import (
    MAX_PAYLOAD,
    NEED_DATA,
    PROTOCOL_VERSION,
    Frame,
    FrameDecoder,
    FrameError,
    Sentinel,
    encode_frame,
    wire_time,
)

Role = Literal["terminal", "till"]
SUPPORTED_VERSIONS: Final = (PROTOCOL_VERSION,)
MAX_REASON: Final = 200
LINK_NAK_CODES: Final = {
    "nohello": "data or ping before the hello exchange (or after the receiver restarted)",
    "seq": "data frame with a sequence number other than the expected or the last one",
    "hello": "hello payload invalid (not JSON, missing or ill-typed field)",
    "role": "both ends claim the same role",
    "version": "no common protocol version",
}
"""Codes a receiver puts in a NAK for a well-formed frame it cannot accept."""


@dataclass(frozen=True)
class Timers:
    """Protocol timers in seconds; the defaults are the v1 values."""

    inter_byte_gap: float = 0.2
    ack_extra: float = 1.0
    ping_idle: float = 10.0
    missed_pings: int = 3
    max_unanswered: int = 3
    """Transmissions of one frame that may go unanswered (ACK wait expired) before giving up."""
    max_transmissions: int = 10
    """Transmissions of one frame in all, NAKed ones included, before giving up."""
    hello_backoff_max: float = 10.0


class QueueFull(LocalProtocolError):
    """send() refused: ``max_queue`` messages are already waiting (the link is down)."""


# -- events ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hello:
    """What a peer announced in its hello."""

    versions: tuple[int, ...]
    max_payload: int
    role: str
    id: str
    reply: bool = False

    def to_payload(self) -> bytes:
        doc: dict[str, Any] = {"versions": list(self.versions), "max_payload": self.max_payload,
                               "role": self.role, "id": self.id}
        if self.reply:
            doc["reply"] = True
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=True).encode()

    @classmethod
    def from_payload(cls, payload: bytes) -> Hello:
        """Parse and check a hello payload; ValueError with a NAK reason if invalid."""
        try:
            doc = jsontext.loads(payload)
        except jsontext.JsonTextError as exc:
            raise ValueError(f"hello payload: {exc}") from exc
        if not isinstance(doc, dict):
            raise ValueError("hello payload must be a JSON object")
        versions = doc.get("versions")
        if (not isinstance(versions, list) or not versions
                or not all(type(v) is int for v in versions)):
            raise ValueError("hello field 'versions' must be a non-empty list of integers")
        max_payload = doc.get("max_payload")
        if type(max_payload) is not int or not 64 <= max_payload <= 0xFFFF:
            raise ValueError("hello field 'max_payload' must be an integer within 64..65535")
        role = doc.get("role")
        if role not in ("till", "terminal"):
            raise ValueError("hello field 'role' must be 'till' or 'terminal'")
        ident = doc.get("id", "")
        if not isinstance(ident, str):
            raise ValueError("hello field 'id' must be a string")
        reply = doc.get("reply", False)
        if not isinstance(reply, bool):
            raise ValueError("hello field 'reply' must be a boolean")
        return cls(tuple(versions), max_payload, role, ident, reply)


@dataclass(frozen=True)
class Message:
    """A data frame accepted from the peer (delivered exactly once)."""

    payload: bytes
    seq: int


@dataclass(frozen=True)
class Acked:
    """The peer acknowledged our data frame."""

    payload: bytes
    seq: int
    transmissions: int


@dataclass(frozen=True)
class SendFailed:
    """A data frame was given up after the maximum number of transmissions."""

    payload: bytes
    reason: str


@dataclass(frozen=True)
class LinkUp:
    """Hello exchanged; ``restarted`` is True when the peer re-helloed on a live link."""

    peer: Hello
    restarted: bool = False


@dataclass(frozen=True)
class LinkDown:
    """The link stopped working (missed pings, failed send, port lost)."""

    reason: str


@dataclass(frozen=True)
class FrameRejected:
    """We NAKed (or dropped) a frame from the peer."""

    reason: str
    seq: int | None
    code: str = ""


@dataclass(frozen=True)
class PeerNak:
    """The peer NAKed one of our frames."""

    seq: int
    code: str
    reason: str = ""


@dataclass(frozen=True)
class DuplicateIgnored:
    """The peer repeated its last accepted frame (our ACK was lost); re-ACKed only."""

    seq: int


Event = (Message | Acked | SendFailed | LinkUp | LinkDown | FrameRejected | PeerNak
         | DuplicateIgnored)


@dataclass
class LinkStats:
    """Counters for diagnostics and benchmarks."""

    frames_sent: int = 0
    frames_received: int = 0
    retransmissions: int = 0
    naks_sent: int = 0
    naks_received: int = 0
    bad_frames: int = 0
    duplicates: int = 0
    send_failures: int = 0
    pings_sent: int = 0


# -- states ----------------------------------------------------------------------------


class LinkState(enum.Enum):
    CLOSED = "CLOSED"          # no port / not started
    HELLO_SENT = "HELLO_SENT"  # our hello is out, waiting for the peer's
    UP = "UP"                  # hello exchanged, data flows


_TRANSITIONS: Final[dict[tuple[LinkState, str], LinkState]] = {
    (LinkState.CLOSED, "connect"): LinkState.HELLO_SENT,
    (LinkState.HELLO_SENT, "connect"): LinkState.HELLO_SENT,
    (LinkState.UP, "connect"): LinkState.HELLO_SENT,
    (LinkState.HELLO_SENT, "hello_request"): LinkState.UP,
    (LinkState.HELLO_SENT, "hello_reply"): LinkState.UP,
    (LinkState.UP, "hello_request"): LinkState.UP,
    (LinkState.UP, "hello_reply"): LinkState.UP,
    (LinkState.UP, "link_lost"): LinkState.HELLO_SENT,
    (LinkState.HELLO_SENT, "link_lost"): LinkState.HELLO_SENT,
    (LinkState.CLOSED, "close"): LinkState.CLOSED,
    (LinkState.HELLO_SENT, "close"): LinkState.CLOSED,
    (LinkState.UP, "close"): LinkState.CLOSED,
}


_FRAME_HANDLERS: Final[dict[tuple[LinkState, str], str]] = {
    (LinkState.HELLO_SENT, "H"): "_on_hello",
    (LinkState.HELLO_SENT, "D"): "_before_hello",
    (LinkState.HELLO_SENT, "P"): "_before_hello",
    (LinkState.HELLO_SENT, "A"): "_ignore",
    (LinkState.HELLO_SENT, "N"): "_note_nak",
    (LinkState.UP, "H"): "_on_hello",
    (LinkState.UP, "D"): "_on_data",
    (LinkState.UP, "P"): "_on_ping",
    (LinkState.UP, "A"): "_on_ack",
    (LinkState.UP, "N"): "_on_nak",
}
"""What a frame from the peer does in each state (a CLOSED link reads nothing); a missing
entry is a bug of ours, never the peer's doing."""


@dataclass
class _Outstanding:
    payload: bytes
    seq: int
    wire: bytes
    transmissions: int
    deadline: float
    unanswered: int = 0


@dataclass
class _Session:
    """Everything that decides what the link does next, in one record (h11's
    ``_state.py`` idea): the state of the table above, both sequence counters, the peer's
    hello, the frame awaiting its ACK, and every timer's deadline. Nothing else in
    :class:`Link` changes its behaviour; the rest is buffers and counters for diagnostics.
    """

    state: LinkState = LinkState.CLOSED
    tx_seq: int = 0  # number of our next data frame
    rx_last: int | None = None  # number of the peer's last accepted data frame
    peer: Hello | None = None
    peer_max: int = MAX_PAYLOAD  # largest payload the peer accepts
    outstanding: _Outstanding | None = None  # our data frame awaiting its ACK
    last_rx: float = 0.0  # when a valid frame last arrived (idle timer)
    last_byte: float = 0.0  # when a byte last arrived (inter-byte gap)
    ping_deadline: float | None = None
    missed_pings: int = 0
    hello_deadline: float | None = None
    hello_tries: int = 0


def _nak_payload(code: str, reason: str | None) -> bytes:
    # Damaged frames are frequent on a noisy line: their NAK carries the code only, to stay
    # short on the wire. Protocol violations are rare and get the full reason.
    doc = {"code": code}
    if reason:
        doc["reason"] = reason[:MAX_REASON]
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=True).encode()


def _parse_nak(payload: bytes) -> tuple[str, str]:
    """(code, reason) of a NAK payload; tolerant, since a NAK is advice only."""
    try:
        doc = jsontext.loads(payload)
    except jsontext.JsonTextError:
        return "", payload.decode("ascii", "replace")[:MAX_REASON]
    if not isinstance(doc, dict):
        return "", ""
    code, reason = doc.get("code"), doc.get("reason")
    return (code if isinstance(code, str) else "",
            reason[:MAX_REASON] if isinstance(reason, str) else "")


class Link:
    """One end of the link. Not thread-safe: the transport serialises calls."""

    def __init__(self, role: Role, local_id: str = "", *, baudrate: int = 115200,
                 max_payload: int = MAX_PAYLOAD, timers: Timers | None = None,
                 max_queue: int = 256) -> None:
        if role not in ("terminal", "till"):
            raise LocalProtocolError(f"role must be 'terminal' or 'till', not {role!r}")
        if baudrate <= 0:
            raise LocalProtocolError("baudrate must be positive")
        self.role: Role = role
        self.local_id = local_id
        self.baudrate = baudrate
        self.max_payload = max_payload
        self.timers = timers or Timers()
        self.max_queue = max_queue
        self.stats = LinkStats()
        self._s = _Session()
        self._decoder = FrameDecoder(max_payload=max_payload)
        self._events: deque[Event] = deque()
        self._out: list[tuple[str, bytes]] = []  # (kind, wire bytes) not yet handed out
        self._queue: deque[bytes] = deque()

    # -- public surface ------------------------------------------------------------------

    @property
    def state(self) -> LinkState:
        return self._s.state

    @property
    def up(self) -> bool:
        return self._s.state is LinkState.UP

    @property
    def peer(self) -> Hello | None:
        """The peer's last hello, once one was received."""
        return self._s.peer

    @property
    def buffered(self) -> int:
        """Bytes of a partly received frame held by the decoder (bounded by one frame)."""
        return self._decoder.buffered

    @property
    def pending(self) -> int:
        """Data frames queued or awaiting an ACK."""
        return len(self._queue) + (1 if self._s.outstanding else 0)

    def connect(self, now: float) -> None:
        """Start (or restart) the link: send a hello request and reset both counters."""
        was_up = self.up
        self._transition("connect")
        self._decoder = FrameDecoder(max_payload=self.max_payload)
        self._out.clear()
        self._requeue_outstanding()
        self._reset_counters(now)
        self._s.hello_tries = 0
        self._send_hello(now)
        if was_up:
            self._events.append(LinkDown("link restarted"))

    def close(self, reason: str = "closed") -> None:
        """The port is gone: stop everything but keep queued messages for the next connect."""
        was_up = self.up
        self._transition("close")
        self._requeue_outstanding()
        self._out.clear()
        self._s.hello_deadline = None
        self._s.ping_deadline = None
        if was_up:
            self._events.append(LinkDown(reason))

    def send(self, payload: bytes, now: float) -> None:
        """Queue one message payload for delivery; LocalProtocolError if it cannot be sent."""
        limit = self._s.peer_max  # what the peer announced it accepts (2048 before its hello)
        if len(payload) > limit:
            raise LocalProtocolError(
                f"message of {len(payload)} bytes exceeds the link's maximum of {limit}")
        Frame("D", 0, payload)  # validates the bytes (no control characters)
        if self.pending >= self.max_queue:
            raise QueueFull(f"send queue full ({self.max_queue} messages waiting)")
        self._queue.append(payload)
        self._pump(now)

    def receive_data(self, data: bytes, now: float) -> None:
        """Feed bytes read from the port; events and replies become available."""
        if self._s.state is LinkState.CLOSED:
            raise LocalProtocolError("receive_data() on a closed link: call connect() first")
        if data:
            self._s.last_byte = now
        # Feed in slices so the decoder buffer stays bounded whatever the caller passes.
        step = max(1024, self._decoder.max_buffer // 2)
        for i in range(0, len(data), step):
            self._decoder.receive_data(data[i:i + step])
            self._drain_decoder(now)
        self._pump(now)

    def next_event(self) -> Event | Literal[Sentinel.NEED_DATA]:
        """The next event, or NEED_DATA when there is none."""
        if self._events:
            return self._events.popleft()
        return NEED_DATA

    def data_to_send(self) -> bytes:
        """Bytes to write to the port now (empty if none)."""
        data = b"".join(wire for _, wire in self._out)
        self._out.clear()
        return data

    def tick(self, now: float) -> None:
        """Advance the timers to ``now``."""
        if self._s.state is LinkState.CLOSED:
            return
        t = self.timers
        if self._decoder.in_frame and now >= self._s.last_byte + t.inter_byte_gap:
            err = self._decoder.abort_partial()
            if err is not None:
                self._bad_frame(err, now)
        if self._s.state is LinkState.HELLO_SENT:
            if self._s.hello_deadline is not None and now >= self._s.hello_deadline:
                self._send_hello(now)
            return
        out = self._s.outstanding
        if out is not None and now >= out.deadline:
            self._retransmit(now, "no ACK within the ACK wait", answered=False)
            if self._s.state is not LinkState.UP:
                return
        if self._s.ping_deadline is not None:
            if now >= self._s.ping_deadline:
                self._s.missed_pings += 1
                if self._s.missed_pings >= t.missed_pings:
                    self._link_lost(now, f"{self._s.missed_pings} pings unanswered")
                    return
                self._send_ping(now)
        elif self._s.outstanding is None and now >= self._s.last_rx + t.ping_idle:
            self._send_ping(now)
        self._pump(now)

    def next_deadline(self) -> float | None:
        """The earliest ``now`` at which ``tick()`` has work to do (None: nothing pending)."""
        if self._s.state is LinkState.CLOSED:
            return None
        times: list[float] = []
        if self._decoder.in_frame:
            times.append(self._s.last_byte + self.timers.inter_byte_gap)
        if self._s.state is LinkState.HELLO_SENT:
            if self._s.hello_deadline is not None:
                times.append(self._s.hello_deadline)
        else:
            if self._s.outstanding is not None:
                times.append(self._s.outstanding.deadline)
            if self._s.ping_deadline is not None:
                times.append(self._s.ping_deadline)
            elif self._s.outstanding is None:
                times.append(self._s.last_rx + self.timers.ping_idle)
        return min(times) if times else None

    # -- internals -----------------------------------------------------------------------

    def _transition(self, what: str) -> None:
        try:
            self._s.state = _TRANSITIONS[(self._s.state, what)]
        except KeyError:
            raise LocalProtocolError(f"cannot {what} in state {self._s.state.value}") from None

    def _ack_wait(self, n_bytes: int) -> float:
        # The frame's wire time plus the protocol's fixed allowance (1 s in v1).
        return wire_time(n_bytes, self.baudrate) + self.timers.ack_extra

    def _emit(self, frame: Frame) -> bytes:
        limit = self._s.peer_max if frame.kind == "D" else 0xFFFF
        wire = encode_frame(frame, max_payload=limit)
        self._out.append((frame.kind, wire))
        self.stats.frames_sent += 1
        return wire

    def _reset_counters(self, now: float) -> None:
        self._s.tx_seq = 0
        self._s.rx_last = None
        self._s.last_rx = now
        self._s.ping_deadline = None
        self._s.missed_pings = 0

    def _requeue_outstanding(self) -> None:
        if self._s.outstanding is not None:
            self._queue.appendleft(self._s.outstanding.payload)
            self._s.outstanding = None

    def _hello(self, reply: bool) -> Hello:
        return Hello(SUPPORTED_VERSIONS, self.max_payload, self.role, self.local_id, reply)

    def _send_hello(self, now: float) -> None:
        wire = self._emit(Frame("H", 0, self._hello(reply=False).to_payload()))
        wait = self._ack_wait(len(wire))
        if self._s.hello_tries >= self.timers.max_unanswered:
            backoff = wait * 2 ** (self._s.hello_tries - self.timers.max_unanswered + 1)
            wait = min(max(wait, backoff), self.timers.hello_backoff_max)
        self._s.hello_tries += 1
        self._s.hello_deadline = now + wait

    def _send_ping(self, now: float) -> None:
        wire = self._emit(Frame("P", (self._s.tx_seq - 1) % 256))
        self.stats.pings_sent += 1
        self._s.ping_deadline = now + self._ack_wait(len(wire))

    def _nak(self, seq: int | None, code: str, reason: str | None = None) -> None:
        self._emit(Frame("N", seq if seq is not None else 0, _nak_payload(code, reason)))
        self.stats.naks_sent += 1

    def _link_lost(self, now: float, reason: str) -> None:
        self._transition("link_lost")
        # Unwritten data frames of the old session must not follow our hello onto the wire
        # (they would look like the new session's first frames); ACKs still go out.
        self._out = [(kind, wire) for kind, wire in self._out if kind != "D"]
        self._requeue_outstanding()
        self._reset_counters(now)
        self._s.hello_tries = 0
        self._send_hello(now)
        self._events.append(LinkDown(reason))

    def _pump(self, now: float) -> None:
        """Start the next queued data frame when the line is free."""
        while self._s.state is LinkState.UP and self._s.outstanding is None and self._queue:
            payload = self._queue.popleft()
            if len(payload) <= self._s.peer_max:
                break
            # Queued before the peer announced a lower maximum: it can never be sent.
            self.stats.send_failures += 1
            self._events.append(SendFailed(
                payload, f"{len(payload)} bytes exceed the peer's max_payload {self._s.peer_max}"))
        else:
            return
        seq = self._s.tx_seq
        wire = self._emit(Frame("D", seq, payload))
        self._s.outstanding = _Outstanding(payload, seq, wire, 1, now + self._ack_wait(len(wire)))
        # The data frame's own timer now watches the peer; a ping in flight is moot.
        self._s.ping_deadline = None
        self._s.missed_pings = 0

    def _retransmit(self, now: float, why: str, *, answered: bool) -> None:
        """Send the outstanding frame again, or give it up when its budget is spent.

        A frame is given up after ``max_unanswered`` transmissions that met silence (the
        peer is gone), or after ``max_transmissions`` in all (the line is too noisy).
        NAKs prove the peer is there, so on a noisy line they do not exhaust the
        first budget.
        """
        out = self._s.outstanding
        if out is None:
            return
        if not answered:
            out.unanswered += 1
        if (out.unanswered >= self.timers.max_unanswered
                or out.transmissions >= self.timers.max_transmissions):
            self._s.outstanding = None
            self.stats.send_failures += 1
            reason = f"no ACK after {out.transmissions} transmissions ({why})"
            self._events.append(SendFailed(out.payload, reason))
            self._link_lost(now, f"data frame {out.seq:02X} undeliverable: {why}")
            return
        out.transmissions += 1
        out.deadline = now + self._ack_wait(len(out.wire))
        self._out.append(("D", out.wire))
        self.stats.frames_sent += 1
        self.stats.retransmissions += 1

    def _drain_decoder(self, now: float) -> None:
        while True:
            try:
                frame = self._decoder.next_event()
            except FrameError as err:
                self._bad_frame(err, now)
                continue
            if frame is NEED_DATA:
                return
            self._on_frame(frame, now)

    def _bad_frame(self, err: FrameError, now: float) -> None:
        self.stats.bad_frames += 1
        self._events.append(FrameRejected(err.reason, err.seq, err.code))
        if err.kind not in ("A", "N"):
            self._nak(err.seq, err.code)
        # The damaged frame may have been the answer to our outstanding frame: resend now
        # rather than wait a whole ACK timeout.
        if self._s.state is LinkState.UP and self._s.outstanding is not None:
            self._retransmit(now, "damaged frame from the peer", answered=True)

    def _on_frame(self, frame: Frame, now: float) -> None:
        self.stats.frames_received += 1
        self._s.last_rx = now
        self._s.missed_pings = 0
        self._s.ping_deadline = None
        if frame.version != PROTOCOL_VERSION:
            self.stats.bad_frames += 1
            reason = f"unsupported protocol version {frame.version}"
            self._events.append(FrameRejected(reason, frame.seq, "version"))
            if frame.kind not in ("A", "N"):
                self._nak(frame.seq, "version", reason)
            return
        name = _FRAME_HANDLERS.get((self._s.state, frame.kind))
        if name is None:
            raise LocalProtocolError(f"no handler for a {frame.kind} frame in state "
                                     f"{self._s.state.value}")
        getattr(self, name)(frame, now)

    def _on_hello(self, frame: Frame, now: float) -> None:
        try:
            hello = Hello.from_payload(frame.payload)
        except ValueError as exc:
            self._reject(frame, "hello", str(exc))
            return
        if hello.role == self.role:
            self._reject(frame, "role", f"both ends claim role {self.role!r}")
            return
        if not set(hello.versions) & set(SUPPORTED_VERSIONS):
            self._reject(frame, "version",
                         f"no common protocol version; we speak {list(SUPPORTED_VERSIONS)}")
            return
        self._s.peer = hello
        self._s.peer_max = min(hello.max_payload, MAX_PAYLOAD)
        if hello.reply:
            if self._s.state is LinkState.HELLO_SENT:
                self._transition("hello_reply")
                self._s.hello_deadline = None
                self._events.append(LinkUp(hello))
            return
        # A hello request: the peer (re)started. Reset both counters, answer, resend.
        restarted = self._s.state is LinkState.UP
        self._transition("hello_request")
        self._s.hello_deadline = None
        self._requeue_outstanding()
        self._reset_counters(now)
        self._emit(Frame("H", 0, self._hello(reply=True).to_payload()))
        self._events.append(LinkUp(hello, restarted=restarted))

    def _reject(self, frame: Frame, code: str, reason: str) -> None:
        self.stats.bad_frames += 1
        self._events.append(FrameRejected(reason, frame.seq, code))
        self._nak(frame.seq, code, reason)

    def _before_hello(self, frame: Frame, now: float) -> None:
        self._reject(frame, "nohello", "hello required before data")

    def _on_data(self, frame: Frame, now: float) -> None:
        expected = 0 if self._s.rx_last is None else (self._s.rx_last + 1) % 256
        if frame.seq == expected:
            self._s.rx_last = frame.seq
            self._emit(Frame("A", frame.seq))
            self._events.append(Message(frame.payload, frame.seq))
        elif frame.seq == self._s.rx_last:
            self.stats.duplicates += 1
            self._emit(Frame("A", frame.seq))
            self._events.append(DuplicateIgnored(frame.seq))
        else:
            self._reject(frame, "seq",
                         f"sequence {frame.seq:02X} out of order, expected {expected:02X}")

    def _ignore(self, frame: Frame, now: float) -> None:
        """An ACK before the hello exchange answers nothing of this session."""

    def _on_ack(self, frame: Frame, now: float) -> None:
        out = self._s.outstanding
        if out is not None and frame.seq == out.seq:
            self._s.outstanding = None
            self._s.tx_seq = (out.seq + 1) % 256
            self._events.append(Acked(out.payload, out.seq, out.transmissions))
        # Any other ACK (a ping answer, a late duplicate) only proves the peer is alive.

    def _note_nak(self, frame: Frame, now: float) -> tuple[str, str]:
        """A NAK while the link is down (our hello's, say): reported, nothing to resend."""
        self.stats.naks_received += 1
        code, reason = _parse_nak(frame.payload)
        self._events.append(PeerNak(frame.seq, code, reason))
        return code, reason

    def _on_nak(self, frame: Frame, now: float) -> None:
        code, _reason = self._note_nak(frame, now)
        if code == "nohello":
            # The peer lost our session (it restarted and its hello was lost): start again.
            self._link_lost(now, "peer has no session (restarted?)")
        elif self._s.outstanding is not None:
            # Resend on any NAK: the bad frame's own number may have been damaged.
            self._retransmit(now, f"NAK {code or '?'}", answered=True)

    def _on_ping(self, frame: Frame, now: float) -> None:
        self._emit(Frame("A", frame.seq))
