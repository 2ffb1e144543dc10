"""Frame codec of the POS serial protocol v1: bytes in, frames out, and back.

Wire format, all printable ASCII::

    STX | K | V | SS | LLLL | PAYLOAD | CCCC | ETX

K is the kind (H hello, D data, A ack, N nak, P ping), V the protocol major version (one
digit), SS the sequence number (2 upper-case hex digits), LLLL the payload length (4 upper-case
hex digits), CCCC the CRC-16/CCITT-FALSE of K..PAYLOAD (4 upper-case hex digits).

The decoder works like h11: feed it with ``receive_data()``, pull with ``next_event()`` until
it says ``NEED_DATA``. It does no I/O and keeps no clock. A bad frame makes ``next_event()``
raise :class:`FrameError` (a ``RemoteProtocolError`` carrying the NAK reason); unlike h11 the
decoder is not poisoned by it: it has already resynchronised at the next STX and the caller
simply calls ``next_event()`` again. Its buffer never holds more than one frame's worth of
bytes from the wire, whatever the peer sends.
"""

from __future__ import annotations

import binascii
import enum
import re
from dataclasses import dataclass
from typing import Final, Literal

from pos_loyalty.errors import LocalProtocolError, RemoteProtocolError

STX: Final = 0x02
ETX: Final = 0x03
KINDS: Final = frozenset("HDANP")
PROTOCOL_VERSION: Final = 1
MAX_PAYLOAD: Final = 2048
"""Largest payload a v1 peer must accept unless it announced a lower limit in its hello."""
HEADER_LEN: Final = 9  # STX K V SS LLLL
TRAILER_LEN: Final = 5  # CCCC ETX
OVERHEAD: Final = HEADER_LEN + TRAILER_LEN
DEFAULT_MAX_BUFFER: Final = 64 * 1024

_HEX: Final = frozenset(b"0123456789ABCDEF")
_KIND_BYTES: Final = frozenset(k.encode()[0] for k in KINDS)
_FORBIDDEN: Final = re.compile(rb"[\x00-\x1f\x7f]")


class Sentinel(enum.Enum):
    """Marker values returned by ``next_event()`` instead of an event."""

    NEED_DATA = "NEED_DATA"


NEED_DATA: Final = Sentinel.NEED_DATA


def crc16_ccitt_false(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final xor.

    That is the standard library's ``binascii.crc_hqx`` (the XMODEM CRC) started at 0xFFFF:
    C speed on the tap path, where a table loop in Python cost ~15 us a frame."""
    return binascii.crc_hqx(data, 0xFFFF)


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame of the protocol; validated on construction (LocalProtocolError)."""

    kind: str
    seq: int
    payload: bytes = b""
    version: int = PROTOCOL_VERSION

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise LocalProtocolError(f"frame kind must be one of H D A N P, not {self.kind!r}")
        if not 0 <= self.seq <= 0xFF:
            raise LocalProtocolError(f"sequence number {self.seq} is outside 0..255")
        if not 0 <= self.version <= 9:
            raise LocalProtocolError(f"version {self.version} is not one digit")
        if not isinstance(self.payload, bytes):
            raise LocalProtocolError("frame payload must be bytes")
        if len(self.payload) > 0xFFFF:
            raise LocalProtocolError(f"payload of {len(self.payload)} bytes cannot be framed")
        if _FORBIDDEN.search(self.payload):
            raise LocalProtocolError("payload contains a control byte (JSON must escape them)")


def encode_frame(frame: Frame, *, max_payload: int = MAX_PAYLOAD) -> bytes:
    """Serialise ``frame`` to wire bytes; LocalProtocolError if the payload is too long."""
    if len(frame.payload) > max_payload:
        raise LocalProtocolError(
            f"payload of {len(frame.payload)} bytes exceeds the maximum of {max_payload}"
        )
    body = b"%s%d%02X%04X" % (frame.kind.encode(), frame.version, frame.seq,
                              len(frame.payload)) + frame.payload
    return b"\x02" + body + b"%04X" % crc16_ccitt_false(body) + b"\x03"


def wire_time(n_bytes: int, baudrate: int) -> float:
    """Seconds ``n_bytes`` take on an 8N1 line (10 bits per byte)."""
    return n_bytes * 10 / baudrate


NAK_CODES: Final = {
    "crc": "the CRC does not match the frame's content",
    "stx": "bytes ending in ETX arrived without a frame start (STX lost)",
    "truncated": "STX or ETX inside a frame: the frame was cut short",
    "length": "the payload length exceeds the maximum",
    "header": "a header byte is not what the format allows (kind, version digit, hex)",
    "control": "a control byte inside the payload",
    "etx": "no ETX after the CRC",
    "gap": "the frame stopped arriving for longer than the inter-byte gap",
}
"""Codes a receiver puts in a NAK for a damaged frame (docs/pos-protocol.md)."""


class FrameError(RemoteProtocolError):
    """A damaged, truncated or oversized frame.

    ``code`` (a key of NAK_CODES) goes into the NAK; ``reason`` is the detailed text for
    logs. ``kind`` and ``seq`` are what could be read of the bad frame (None if unreadable);
    they may themselves be damaged and are hints only.
    """

    def __init__(self, reason: str, *, code: str, kind: str | None = None,
                 seq: int | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.kind = kind
        self.seq = seq


_State = Literal["hunt", "frame", "skip"]


class FrameDecoder:
    """Incremental, resynchronising decoder of a byte stream into :class:`Frame` objects.

    States: ``hunt`` (between frames, discarding noise until STX), ``frame`` (the buffer
    starts with STX), ``skip`` (after a bad frame: discard through the next ETX, or up to the
    next STX). Noise that ends in ETX while hunting is reported as a frame whose STX was lost,
    so the peer is NAKed at once instead of waiting for its ACK timer.
    """

    def __init__(self, *, max_payload: int = MAX_PAYLOAD,
                 max_buffer: int = DEFAULT_MAX_BUFFER) -> None:
        if not 0 <= max_payload <= 0xFFFF:
            raise LocalProtocolError("max_payload must be within 0..65535")
        if max_buffer < max_payload + OVERHEAD:
            raise LocalProtocolError("max_buffer must hold at least one whole frame")
        self.max_payload = max_payload
        self.max_buffer = max_buffer
        self._buf = bytearray()
        self._state: _State = "hunt"
        self._checked = 1  # in state "frame": bytes before this index are validated
        self._length: int | None = None
        self._noise_len = 0
        self._noise_head = bytearray()
        self.noise_bytes = 0
        """Bytes discarded outside any frame since creation (for statistics)."""

    @property
    def buffered(self) -> int:
        """Bytes held in the buffer right now (at most one frame once drained)."""
        return len(self._buf)

    @property
    def in_frame(self) -> bool:
        """True while part of a frame is buffered (the inter-byte gap timer applies)."""
        return self._state == "frame"

    def receive_data(self, data: bytes) -> None:
        """Append bytes from the wire; LocalProtocolError if the caller never drains."""
        if len(self._buf) + len(data) > self.max_buffer:
            raise LocalProtocolError(
                "decoder buffer full: call next_event() until NEED_DATA between feeds"
            )
        self._buf += data

    def abort_partial(self) -> FrameError | None:
        """Drop a partly received frame (inter-byte gap expired); describe what was dropped."""
        if self._state != "frame":
            return None
        err = self._error("frame incomplete: inter-byte gap exceeded", "gap")
        # Keep any later STX: it starts the next frame.
        nxt = self._buf.find(STX, 1)
        if nxt < 0:
            self._buf.clear()
            self._state = "hunt"
            self._reset_noise()
        else:
            del self._buf[:nxt]
            self._enter_frame()
        return err

    # -- parsing ------------------------------------------------------------------------

    def next_event(self) -> Frame | Literal[Sentinel.NEED_DATA]:
        """Return the next whole frame or NEED_DATA; raise FrameError for a bad frame."""
        while True:
            if self._state == "skip":
                if not self._skip():
                    return NEED_DATA
            elif self._state == "hunt":
                if not self._hunt():
                    return NEED_DATA
            else:
                frame = self._parse_frame()
                if frame is None:
                    return NEED_DATA
                return frame

    def _reset_noise(self) -> None:
        self._noise_len = 0
        self._noise_head.clear()

    def _enter_frame(self) -> None:
        self._state = "frame"
        self._checked = 1
        self._length = None

    def _skip(self) -> bool:
        buf = self._buf
        stx, etx = buf.find(STX), buf.find(ETX)
        if etx >= 0 and (stx < 0 or etx < stx):
            self.noise_bytes += etx + 1
            del buf[: etx + 1]
            self._state = "hunt"
            self._reset_noise()
            return True
        if stx >= 0:
            self.noise_bytes += stx
            del buf[:stx]
            self._enter_frame()
            return True
        self.noise_bytes += len(buf)
        buf.clear()
        return False

    def _hunt(self) -> bool:
        buf = self._buf
        stx = buf.find(STX)
        etx = buf.find(ETX)
        if etx >= 0 and (stx < 0 or etx < stx):
            noise = bytes(buf[:etx])
            del buf[: etx + 1]
            self.noise_bytes += len(noise) + 1
            self._add_noise(noise)
            run, head = self._noise_len, bytes(self._noise_head)
            self._reset_noise()
            if 0 < run <= self.max_payload + OVERHEAD:
                kind, seq = _read_head(head)
                raise FrameError("frame start (STX) missing", code="stx", kind=kind, seq=seq)
            return True
        if stx >= 0:
            self.noise_bytes += stx
            del buf[:stx]
            self._reset_noise()
            self._enter_frame()
            return True
        self.noise_bytes += len(buf)
        self._add_noise(bytes(buf))
        buf.clear()
        return False

    def _add_noise(self, noise: bytes) -> None:
        self._noise_len += len(noise)
        if len(self._noise_head) < 4:
            self._noise_head += noise[: 4 - len(self._noise_head)]

    def _kind_seq(self) -> tuple[str | None, int | None]:
        buf = self._buf
        kind = chr(buf[1]) if self._checked > 1 else None
        seq = int(buf[3:5], 16) if self._checked > 4 else None
        return kind, seq

    def _error(self, reason: str, code: str) -> FrameError:
        kind, seq = self._kind_seq()
        return FrameError(reason, code=code, kind=kind, seq=seq)

    def _fail(self, reason: str, pos: int, code: str) -> FrameError:
        """Build the error for the byte at ``pos`` and resynchronise the buffer."""
        err = self._error(reason, code)
        buf = self._buf
        b = buf[pos]
        if b == STX:  # a new frame starts here: the current one was cut short
            del buf[:pos]
            self._enter_frame()
        elif b == ETX:
            del buf[: pos + 1]
            self._state = "hunt"
            self._reset_noise()
        else:
            del buf[: pos + 1]
            self._state = "skip"
        return err

    def _parse_frame(self) -> Frame | None:
        buf = self._buf
        n = len(buf)
        p = self._checked
        # Header: K V SS LLLL, byte by byte so damage is reported as soon as it arrives.
        while p < HEADER_LEN and p < n:
            b = buf[p]
            if b in (STX, ETX):
                raise self._fail("frame truncated (STX or ETX inside the header)", p, "truncated")
            if p == 1 and b not in _KIND_BYTES:
                raise self._fail(f"unknown frame kind 0x{b:02X}", p, "header")
            if p == 2 and not 0x30 <= b <= 0x39:
                raise self._fail(f"version byte 0x{b:02X} is not a digit", p, "header")
            if p >= 3 and b not in _HEX:
                raise self._fail(f"header byte 0x{b:02X} is not an upper-case hex digit", p,
                                 "header")
            p += 1
            self._checked = p
        if p < HEADER_LEN:
            return None
        if self._length is None:
            length = int(buf[5:9], 16)
            if length > self.max_payload:
                raise self._fail(
                    f"payload length {length} exceeds the maximum of {self.max_payload}", 8,
                    "length")
            self._length = length
        length = self._length
        end_payload = HEADER_LEN + length
        # Payload: no control byte may appear (JSON escapes them); STX/ETX mean truncation.
        if p < end_payload:
            stop = min(n, end_payload)
            m = _FORBIDDEN.search(buf, p, stop)
            if m is not None:
                pos = m.start()
                b = buf[pos]
                if b in (STX, ETX):
                    raise self._fail("frame truncated (STX or ETX inside the payload)", pos,
                                     "truncated")
                raise self._fail(f"control byte 0x{b:02X} inside the payload", pos, "control")
            p = stop
            self._checked = p
            if p < end_payload:
                return None
        end_crc = end_payload + 4
        while p < end_crc and p < n:
            b = buf[p]
            if b in (STX, ETX):
                raise self._fail("frame truncated (STX or ETX inside the CRC)", p, "truncated")
            if b not in _HEX:
                raise self._fail(f"CRC byte 0x{b:02X} is not an upper-case hex digit", p, "header")
            p += 1
            self._checked = p
        if p < end_crc:
            return None
        if n <= end_crc:
            return None
        if buf[end_crc] != ETX:
            raise self._fail("ETX missing after the CRC", end_crc, "etx")
        crc = int(buf[end_payload:end_crc], 16)
        actual = crc16_ccitt_false(bytes(buf[1:end_payload]))
        if crc != actual:
            raise self._fail(f"bad CRC: frame says {crc:04X}, content gives {actual:04X}",
                             end_crc, "crc")
        frame = Frame(kind=chr(buf[1]), seq=int(buf[3:5], 16),
                      payload=bytes(buf[HEADER_LEN:end_payload]), version=buf[2] - 0x30)
        del buf[: end_crc + 1]
        self._state = "hunt"
        self._reset_noise()
        return frame


def _read_head(head: bytes) -> tuple[str | None, int | None]:
    """Best-effort kind and sequence of a frame whose STX was lost (head = K V S S)."""
    kind = chr(head[0]) if head and head[0] in _KIND_BYTES else None
    seq = None
    if len(head) >= 4 and head[2] in _HEX and head[3] in _HEX:
        seq = int(head[2:4], 16)
    return kind, seq
