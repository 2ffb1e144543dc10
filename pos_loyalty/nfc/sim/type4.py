"""Emulated NFC Forum Type 4 tags (ISO-DEP, ISO 14443-4) for the UDP tag emulator.

Two layers, both pure state machines (frames in, frames out, no I/O):

* :class:`IsoDepTarget`: the card side of ISO 14443-4 after anticollision: RATS -> ATS, I-blocks
  with block numbers, chaining both ways, R(ACK)/R(NAK) (the PICC rules 10-13 / D-E of
  ISO 14443-4), S(DESELECT). Subclasses answer command APDUs.
* :class:`Type4Tag`: the NFC Forum Type 4 Tag NDEF application: SELECT by name
  ``D2760000850101``, SELECT ``E103`` (capability container) and the NDEF file, READ BINARY
  and UPDATE BINARY.

Two flavours on top: :class:`PhoneCard` (a phone's host card emulation: random 4-byte UID
starting 08, static NDEF) and :class:`Ntag424Dna` (7-byte NXP UID; its NDEF file is a SUN URL
whose PICC data and MAC, and optionally encrypted file data, are recomputed for every
activation with the read counter advancing once per tap).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from enum import Enum
from typing import Any

import ndef

from pos_loyalty.nfc import sun

NDEF_AID_V2 = bytes.fromhex("D2760000850101")
NDEF_AID_V1 = bytes.fromhex("D2760000850100")
CC_FILE = b"\xe1\x03"
NDEF_FILE = b"\xe1\x04"

SW_OK = b"\x90\x00"
SW_WRONG_LENGTH = b"\x67\x00"
SW_SECURITY = b"\x69\x82"
SW_NO_EF = b"\x69\x86"
SW_NOT_FOUND = b"\x6a\x82"
SW_NO_SPACE = b"\x6a\x84"
SW_BAD_P1P2 = b"\x6a\x86"
SW_WRONG_OFFSET = b"\x6b\x00"
SW_INS = b"\x6d\x00"
SW_CLA = b"\x6e\x00"

#: FSDI/FSCI -> frame size (ISO 14443-4 table); values above 8 are RFU and mean 256.
FRAME_SIZES = (16, 24, 32, 40, 48, 64, 96, 128, 256)
#: Longest command we accept, chained or not: a short APDU with 255 data bytes plus slack.
MAX_COMMAND = 512


class _State(Enum):
    IDLE = "idle"        # selected at layer 3, waiting for RATS
    ACTIVE = "active"    # ISO-DEP exchanges
    HALTED = "halted"    # deselected or halted: silent until the field is reset


def _ats(fsci: int, fwi: int, historical: bytes = b"") -> bytes:
    """ATS with TA, TB and TC present: TL T0 TA TB TC [historical bytes].

    TA 00: 106 kbit/s only. TB: FWI (frame waiting time) and SFGI 1. TC 00: neither CID nor
    NAD (a real NTAG 424 DNA announces CID; we do not implement it, so we do not claim it).
    """
    body = bytes([0x70 | fsci, 0x00, (fwi << 4) | 0x01, 0x00]) + historical
    return bytes([len(body) + 1]) + body


class IsoDepTarget:
    """ISO 14443-4 (ISO-DEP) card side; override :meth:`apdu` to answer commands.

    Implements the EmulatedTag protocol (``uid``, ``sens_res``, ``sel_res``, ``reset``,
    ``handle``) of :mod:`pos_loyalty.nfc.sim.base`.
    """

    sel_res: int = 0x20

    def __init__(self, uid: bytes, sens_res: bytes, ats: bytes) -> None:
        if len(uid) not in (4, 7, 10):
            raise ValueError(f"UID must be 4, 7 or 10 bytes, got {len(uid)}")
        self.uid = bytes(uid)
        self.sens_res = bytes(sens_res)
        self.ats = bytes(ats)
        self._state = _State.IDLE
        self._block = 1
        self._fsd = 256
        self._last: bytes | None = None
        self._rx = bytearray()
        self._rx_overflow = False
        self._tx: bytes = b""     # response bytes still to be sent by chaining

    # -- EmulatedTag -----------------------------------------------------------------------

    def reset(self) -> None:
        """Field off/on: back to waiting for RATS, all ISO-DEP and application state lost."""
        self._state = _State.IDLE
        self._block = 1
        self._last = None
        self._rx.clear()
        self._rx_overflow = False
        self._tx = b""
        self.deselected()

    def handle(self, frame: bytes) -> bytes | None:
        """Answer one frame from the reader; None means the card stays silent."""
        frame = bytes(frame)
        if not frame or self._state is _State.HALTED:
            return None
        if frame[:1] == b"\x50" and len(frame) == 2:   # HLTA
            self._state = _State.HALTED
            return None
        if self._state is _State.IDLE:
            return self._rats(frame)
        return self._block_frame(frame)

    # -- for subclasses --------------------------------------------------------------------

    def apdu(self, command: bytes) -> bytes:
        """Answer a complete command APDU with response data and status word."""
        return SW_INS

    def activated(self) -> None:
        """Called when RATS activates the card (a new tap)."""

    def deselected(self) -> None:
        """Called on reset and S(DESELECT): drop application state."""

    # -- ISO-DEP ---------------------------------------------------------------------------

    def _rats(self, frame: bytes) -> bytes | None:
        if len(frame) != 2 or frame[0] != 0xE0:
            return None
        self._fsd = FRAME_SIZES[min(frame[1] >> 4, 8)]
        self._state = _State.ACTIVE
        self._block = 1
        self.activated()
        return self.ats

    def _send(self, block: bytes) -> bytes:
        self._last = block
        return block

    def _max_inf(self) -> int:
        return self._fsd - 3   # PCB and the two CRC bytes

    def _next_chunk(self) -> bytes:
        limit = self._max_inf()
        chunk, self._tx = self._tx[:limit], self._tx[limit:]
        pcb = (0x12 if self._tx else 0x02) | self._block
        return self._send(bytes([pcb]) + chunk)

    def _block_frame(self, frame: bytes) -> bytes | None:
        pcb = frame[0]
        if pcb & 0x08:                 # CID following: we do not support CIDs, ignore
            return None
        if pcb & 0xE2 == 0x02 and not pcb & 0x04:      # I-block (no NAD)
            return self._i_block(pcb, frame[1:])
        if pcb & 0xE6 == 0xA2:                          # R-block
            return self._r_block(pcb)
        if pcb == 0xC2:                                 # S(DESELECT)
            self._state = _State.HALTED
            self.deselected()
            return bytes([0xC2])
        return None                                     # S(WTX) reply or garbage: ignore

    def _i_block(self, pcb: int, inf: bytes) -> bytes:
        self._block ^= 1                                # rule D: toggle on every I-block
        self._tx = b""
        if len(self._rx) + len(inf) > MAX_COMMAND:
            self._rx_overflow = True
        else:
            self._rx += inf
        if pcb & 0x10:                                  # reader is chaining: acknowledge
            return self._send(bytes([0xA2 | self._block]))
        command, overflow = bytes(self._rx), self._rx_overflow
        self._rx.clear()
        self._rx_overflow = False
        self._tx = SW_WRONG_LENGTH if overflow else self.apdu(command)
        return self._next_chunk()

    def _r_block(self, pcb: int) -> bytes | None:
        number, nak = pcb & 0x01, bool(pcb & 0x10)
        if number == self._block:                       # rule 11: resend the last block
            return self._last
        if nak:                                         # rule 12: R(NAK) other number -> ACK
            return self._send(bytes([0xA2 | self._block]))
        if self._tx:                                    # rule 13/E: continue our chaining
            self._block ^= 1
            return self._next_chunk()
        return None


def parse_apdu(command: bytes) -> tuple[int, int, int, int, bytes, int | None] | None:
    """Split a short command APDU into CLA, INS, P1, P2, data, Le (None if absent).

    Returns None when the length bytes do not match the APDU's size.
    """
    if len(command) < 4:
        return None
    cla, ins, p1, p2 = command[:4]
    body = command[4:]
    if not body:
        return cla, ins, p1, p2, b"", None
    if len(body) == 1:
        return cla, ins, p1, p2, b"", body[0] or 256
    lc = body[0]
    if lc == 0:
        return None                                     # extended length: not supported
    if len(body) == 1 + lc:
        return cla, ins, p1, p2, body[1:], None
    if len(body) == 2 + lc:
        return cla, ins, p1, p2, body[1:1 + lc], body[-1] or 256
    return None


class Type4Tag(IsoDepTarget):
    """An NFC Forum Type 4 Tag with the NDEF application (mapping version 2.0).

    ``ndef_data`` is the NDEF message (without the 2-byte NLEN); ``capacity`` is the size of
    the NDEF file including NLEN. ``writable`` decides whether UPDATE BINARY is allowed.
    """

    def __init__(self, uid: bytes, ndef_data: bytes = b"", *, sens_res: bytes = b"\x44\x00",
                 ats: bytes | None = None, capacity: int = 1024, writable: bool = True,
                 mle: int = 0x0100, mlc: int = 0x00FF) -> None:
        # FWI 9 (~155 ms) rather than a chip's 7 (~39 ms): a busy test machine must not trip
        # nfcpy's frame waiting time and desynchronise the udp link with late answers
        super().__init__(uid, sens_res, ats if ats is not None else _ats(fsci=8, fwi=9))
        if not 4 <= capacity <= 0x7FFF:
            raise ValueError("NDEF file capacity must be 4..32767 bytes")
        if len(ndef_data) + 2 > capacity:
            raise ValueError(f"NDEF message of {len(ndef_data)} bytes does not fit "
                             f"a {capacity}-byte file")
        self.writable = writable
        self.capacity = capacity
        self._ndef_file = bytearray(capacity)
        self._set_ndef(ndef_data)
        cc_tlv = b"\x04\x06" + NDEF_FILE + capacity.to_bytes(2, "big") + bytes(
            [0x00, 0x00 if writable else 0xFF])
        self._cc = (15).to_bytes(2, "big") + b"\x20" + mle.to_bytes(2, "big") + \
            mlc.to_bytes(2, "big") + cc_tlv
        self._app_selected = False
        self._current: bytes | None = None

    # -- NDEF contents ---------------------------------------------------------------------

    def _set_ndef(self, message: bytes) -> None:
        data = len(message).to_bytes(2, "big") + message
        self._ndef_file[: len(data)] = data

    @property
    def ndef_data(self) -> bytes:
        """The NDEF message as stored now (NLEN bytes after the length field)."""
        nlen = int.from_bytes(self._ndef_file[:2], "big")
        return bytes(self._ndef_file[2:2 + min(nlen, self.capacity - 2)])

    def ndef_records(self) -> list[Any]:
        """The stored NDEF message decoded with ndeflib (raises ndef's errors if malformed)."""
        return list(ndef.message_decoder(self.ndef_data))

    def file_read(self, fid: bytes) -> bytes:
        """Contents of a file as READ BINARY sees it (hook for dynamic content)."""
        return bytes(self._cc) if fid == CC_FILE else bytes(self._ndef_file)

    # -- ISO-DEP hooks ---------------------------------------------------------------------

    def deselected(self) -> None:
        self._app_selected = False
        self._current = None

    def apdu(self, command: bytes) -> bytes:
        parsed = parse_apdu(command)
        if parsed is None:
            return SW_WRONG_LENGTH
        cla, ins, p1, p2, data, le = parsed
        if cla != 0x00:
            return SW_CLA
        if ins == 0xA4:
            return self._select(p1, p2, data)
        if ins == 0xB0:
            return self._read_binary(p1, p2, le)
        if ins == 0xD6:
            return self._update_binary(p1, p2, data)
        return SW_INS

    def _select(self, p1: int, p2: int, data: bytes) -> bytes:
        if p1 == 0x04:
            if data in (NDEF_AID_V2, NDEF_AID_V1):
                self._app_selected = True
                self._current = None
                return SW_OK
            return SW_NOT_FOUND
        if p1 == 0x00 and p2 in (0x00, 0x0C) and len(data) == 2:
            if self._app_selected and data in (CC_FILE, NDEF_FILE):
                self._current = data
                return SW_OK
            return SW_NOT_FOUND
        return SW_BAD_P1P2

    def _read_binary(self, p1: int, p2: int, le: int | None) -> bytes:
        if self._current is None:
            return SW_NO_EF
        if p1 & 0x80:
            return SW_BAD_P1P2
        offset = (p1 << 8) | p2
        content = self.file_read(self._current)
        if offset >= len(content):
            return SW_WRONG_OFFSET
        return content[offset:offset + (le or 256)] + SW_OK

    def _update_binary(self, p1: int, p2: int, data: bytes) -> bytes:
        if self._current is None:
            return SW_NO_EF
        if self._current != NDEF_FILE or not self.writable:
            return SW_SECURITY
        if p1 & 0x80:
            return SW_BAD_P1P2
        offset = (p1 << 8) | p2
        if not data:
            return SW_WRONG_LENGTH
        if offset + len(data) > self.capacity:
            return SW_NO_SPACE
        self._ndef_file[offset:offset + len(data)] = data
        return SW_OK


def _encode(records: bytes | Iterable[Any]) -> bytes:
    if isinstance(records, bytes | bytearray):
        return bytes(records)
    return b"".join(ndef.message_encoder(list(records)))


def random_phone_uid(token: Callable[[int], bytes] = secrets.token_bytes) -> bytes:
    """A 4-byte random UID as phones use for card emulation: first byte 08 (ISO 14443-3)."""
    return b"\x08" + token(3)


class PhoneCard(Type4Tag):
    """A phone's host card emulation: random 4-byte UID (08...), static NDEF, read-only."""

    def __init__(self, records: bytes | Iterable[Any], *, uid: bytes | None = None,
                 writable: bool = False, capacity: int = 1024) -> None:
        super().__init__(uid if uid is not None else random_phone_uid(), _encode(records),
                         sens_res=b"\x04\x00", capacity=capacity, writable=writable)


#: A 7-byte NXP UID (manufacturer 04) for NTAG 424 DNA tags made in tests.
DEFAULT_424_UID = bytes.fromhex("04A1B2C3D4E580")


class Ntag424Dna(Type4Tag):
    """NTAG 424 DNA with SUN: the NDEF file is a URI record ``base_url?picc_data=..&cmac=..``.

    Every activation (RATS, that is every tap) that reads the NDEF file advances the read
    counter by one and mirrors fresh PICC data and MAC (and ``enc`` when ``file_data`` is set,
    a multiple of 16 bytes). Within one activation the content stays the same, so a reader
    that reads NLEN and the message in several READ BINARYs sees one consistent URL.
    The file is locked against UPDATE BINARY, as after provisioning.
    ``pad`` supplies the 5 random bytes the chip puts after the counter in PICC data.
    """

    def __init__(self, base_url: str, meta_read_key: bytes, file_read_key: bytes, *,
                 uid: bytes = DEFAULT_424_UID, counter: int = 0, file_data: bytes | None = None,
                 pad: Callable[[int], bytes] = secrets.token_bytes) -> None:
        if len(uid) != sun.UID_LEN:
            raise ValueError("NTAG 424 DNA has a 7-byte UID")
        if not 0 <= counter < sun.COUNTER_MAX:
            raise ValueError("read counter out of range")
        self.base_url = base_url
        self._tag_uid = bytes(uid)
        self._meta = bytes(meta_read_key)
        self._file_key = bytes(file_read_key)
        self.file_data = file_data
        self.counter = counter
        self._pad = pad
        self._rendered: bytes | None = None
        probe = self._render(counter)       # fixes the layout, checks keys and file data
        super().__init__(uid, probe, sens_res=b"\x44\x03", capacity=256, writable=False,
                         ats=_ats(fsci=7, fwi=9, historical=b"\x80"))
        self._rendered = None

    def _render(self, counter: int) -> bytes:
        msg = sun.generate_sun(self._meta, self._file_key, self._tag_uid, counter,
                               file_data=self.file_data, pad=self._pad(5))
        return _encode([ndef.UriRecord(msg.url(self.base_url))])

    @property
    def last_url(self) -> str | None:
        """The SUN URL mirrored in the current activation, if the NDEF file was read."""
        if self._rendered is None:
            return None
        record = next(iter(ndef.message_decoder(self._rendered)))
        return str(record.iri)

    def activated(self) -> None:
        self._rendered = None

    def file_read(self, fid: bytes) -> bytes:
        if fid != NDEF_FILE:
            return super().file_read(fid)
        if self._rendered is None:
            if self.counter >= sun.COUNTER_MAX:
                return super().file_read(fid)   # counter exhausted: last content stays
            self.counter += 1
            self._rendered = self._render(self.counter)
            self._set_ndef(self._rendered)
        return bytes(self._ndef_file)
