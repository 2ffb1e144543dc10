"""PC/SC reader backend: pyscard over ``pcscd``, for the readers nfcpy does not drive well.

ACS ACR122U and ACR1252U (and any CCID contactless reader) present cards to PC/SC:

* NFC Forum Type 2 tags (NTAG21x, Ultralight) as PC/SC part 3 *storage cards*: the ATR carries
  the PC/SC RID ``A000000306`` and a card name; pages are read with ``FF B0 00 <page> <Le>``.
* ISO 14443-4 cards (NFC Forum Type 4: NTAG 424 DNA, phones) take ISO 7816-4 APDUs directly;
  the reader runs ISO-DEP.
* Any card: ``FF CA 00 00 00`` returns the UID.

Device paths: ``pcsc`` or ``pcsc:0`` (first reader), ``pcsc:<n>``, ``pcsc:<name part>``
(e.g. ``pcsc:ACS ACR1252``, case-insensitive substring of the PC/SC reader name).

The card-reading logic (:func:`read_card`) is pure over a ``transmit`` function; the
:class:`PcscSource` loop is the thin pyscard edge, a
:class:`~pos_loyalty.nfc.source.TagSource` like the nfcpy one: the reader pipeline
(:class:`~pos_loyalty.nfc.reader.Reader`, what the daemon opens) classifies and debounces
its reads exactly as it does nfcpy's. pyscard's errors become
:class:`~pos_loyalty.errors.ReaderError`; pyscard itself is imported only when a PC/SC reader
is used (it is the optional ``pcsc`` extra).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pos_loyalty.errors import ReaderError
from pos_loyalty.nfc.source import TagRead, TagSink

log = logging.getLogger(__name__)

#: A transmit function: command APDU in, response APDU (data and status word) out.
Transmit = Callable[[bytes], bytes]

PCSC_RID = bytes.fromhex("A000000306")
NDEF_AID_V2 = bytes.fromhex("D2760000850101")
NDEF_AID_V1 = bytes.fromhex("D2760000850100")
GET_UID = bytes.fromhex("FFCA000000")
#: card name (PC/SC part 3 supplement) -> what we call the tag when the CC does not say more
CARD_NAMES = {
    0x0001: "MIFARE Classic 1K", 0x0002: "MIFARE Classic 4K", 0x0003: "Type2Tag",
    0x0026: "MIFARE Mini", 0x003A: "MIFARE Ultralight C",
}
#: Type 2 capability container data-area size byte -> nfcpy's product name
TYPE2_PRODUCTS = {0x12: "NTAG213", 0x3E: "NTAG215", 0x6D: "NTAG216", 0x06: "Type2Tag"}
MAX_NDEF = 32 * 1024


@dataclass(frozen=True)
class AtrInfo:
    """What an ATR says about the card: a PC/SC storage card (with its card name) or not."""

    storage: bool
    card_name: int | None = None
    historical: bytes = b""


@dataclass(frozen=True)
class CardRead:
    """One card read through PC/SC: its UID, what it is, and its NDEF message if any.

    ``tag_type`` uses nfcpy's product names (``NTAG213``, ``Type4Tag``...) so both backends
    report alike. ``error`` says why no NDEF could be read (blank, foreign, unreadable).
    """

    uid: bytes
    tag_type: str
    ndef: bytes | None
    atr: bytes
    error: str | None = None
    read_done: float = 0.0
    read_ms: float = 0.0


def parse_atr(atr: bytes) -> AtrInfo:
    """Classify an ATR as a PC/SC part 3 storage card or an ISO 14443-4 card."""
    if len(atr) >= 2 and atr[0] == 0x3B:
        k = atr[1] & 0x0F
        hist = atr[-k - 1:-1] if len(atr) >= k + 3 else b""
        # storage cards: historical bytes 80 4F 0C A0 00 00 03 06 SS NN NN 00 00 00 00
        if len(hist) >= 11 and hist[0] == 0x80 and hist[1] == 0x4F and \
                hist[3:8] == PCSC_RID:
            return AtrInfo(storage=True, card_name=int.from_bytes(hist[9:11], "big"),
                           historical=hist)
        return AtrInfo(storage=False, historical=hist)
    return AtrInfo(storage=False)


def parse_device_path(path: str) -> int | str:
    """``pcsc``/``pcsc:0`` -> 0, ``pcsc:2`` -> 2, ``pcsc:ACS ACR1252`` -> ``"ACS ACR1252"``."""
    scheme, _, rest = path.partition(":")
    if scheme != "pcsc":
        raise ReaderError(f"not a PC/SC device path: {path!r} (use pcsc:0 or pcsc:<name>)")
    rest = rest.strip()
    if not rest:
        return 0
    return int(rest) if rest.isdigit() else rest


def _contactless_first(name: str) -> int:
    """Sort key: a reader's contactless slot before its others (ACR1252U: PICC, then SAM)."""
    upper = name.upper()
    if "SAM" in upper.split() or "SAM]" in upper:
        return 2
    return 0 if any(w in upper for w in ("PICC", "CONTACTLESS", " CL ")) else 1


def choose_reader(names: list[str], selector: int | str) -> str | None:
    """The reader name the selector picks from pcscd's list, or None.

    An index counts in pcscd's order, leaving out SAM slots (never a tag reader). A name
    part matches case-insensitively; when several slots match (a dual-interface ACS reader
    shows a PICC and a SAM slot) the contactless one wins.
    """
    if isinstance(selector, int):
        readers = [n for n in names if _contactless_first(n) < 2]
        return readers[selector] if 0 <= selector < len(readers) else None
    wanted = selector.lower()
    matches = [n for n in names if wanted in n.lower()]
    return min(matches, key=_contactless_first) if matches else None


def _ok(response: bytes) -> bytes | None:
    return response[:-2] if len(response) >= 2 and response[-2:] == b"\x90\x00" else None


def find_ndef_tlv(data: bytes) -> tuple[bytes | None, int | None]:
    """Walk Type 2 TLVs: (NDEF message, None) when found whole, (None, bytes needed) when the
    data ends inside a TLV, (None, None) when there is no NDEF TLV (terminator or junk)."""
    i = 0
    while i < len(data):
        t = data[i]
        if t == 0x00:
            i += 1
            continue
        if t == 0xFE:
            return None, None
        if i + 1 >= len(data):
            return None, i + 2
        length, head = data[i + 1], 2
        if length == 0xFF:
            if i + 3 >= len(data):
                return None, i + 4
            length, head = int.from_bytes(data[i + 2:i + 4], "big"), 4
        end = i + head + length
        if t == 0x03:
            if end > len(data):
                return None, end
            return bytes(data[i + head:end]), None
        if t not in (0x01, 0x02, 0xFD):
            return None, None
        i = end
    return None, i + 1


def read_type2(transmit: Transmit, *, read_len: int = 16) -> tuple[str, bytes | None, str | None]:
    """Read a Type 2 tag through storage-card APDUs: (tag type, NDEF message, error)."""
    cc = _ok(transmit(bytes([0xFF, 0xB0, 0x00, 0x03, 0x04])))
    if cc is None or len(cc) < 4:
        return "Type2Tag", None, "cannot read the capability container"
    tag_type = TYPE2_PRODUCTS.get(cc[2], "Type2Tag")
    if cc[0] != 0xE1:
        return tag_type, None, "no NDEF capability container (blank or foreign tag)"
    size = cc[2] * 8
    data = bytearray()
    page = 4
    while len(data) < size:
        chunk = _ok(transmit(bytes([0xFF, 0xB0, 0x00, page, read_len])))
        if chunk is None or not chunk:
            return tag_type, None, f"read of page {page} failed"
        data += chunk[:read_len]
        page += len(chunk[:read_len]) // 4 or 1
        message, needed = find_ndef_tlv(bytes(data[:size]))
        if message is not None:
            return tag_type, message, None
        if needed is None:
            return tag_type, None, "no NDEF message on the tag"
        if needed > size:
            return tag_type, None, "NDEF TLV runs past the end of the tag"
    return tag_type, None, "no NDEF message on the tag"


def read_type4(transmit: Transmit) -> tuple[bytes | None, str | None]:
    """Read the NDEF file of an ISO 14443-4 card (NFC Forum Type 4): (message, error)."""
    for aid in (NDEF_AID_V2, NDEF_AID_V1):
        if _ok(transmit(bytes([0x00, 0xA4, 0x04, 0x00, len(aid)]) + aid + b"\x00")) is not None:
            break
    else:
        return None, "no NDEF application (not an NFC Forum Type 4 tag)"
    if _ok(transmit(bytes.fromhex("00A4000C02E103"))) is None:
        return None, "no NDEF capability container file"
    cc = _ok(transmit(bytes.fromhex("00B000000F")))
    if cc is None or len(cc) < 15 or cc[7] != 0x04 or cc[8] != 0x06:
        return None, "unreadable NDEF capability container"
    mle = max(int.from_bytes(cc[3:5], "big"), 1)
    fid, file_size = cc[9:11], int.from_bytes(cc[11:13], "big")
    if cc[13] != 0x00:
        return None, "NDEF file is not readable"
    if _ok(transmit(bytes([0x00, 0xA4, 0x00, 0x0C, 0x02]) + fid)) is None:
        return None, "cannot select the NDEF file"
    head = _ok(transmit(bytes.fromhex("00B0000002")))
    if head is None or len(head) != 2:
        return None, "cannot read the NDEF length"
    nlen = int.from_bytes(head, "big")
    if nlen > min(file_size - 2, MAX_NDEF):
        return None, "NDEF length larger than the file"
    data = bytearray()
    while len(data) < nlen:
        offset = 2 + len(data)
        want = min(mle, 0xFF, nlen - len(data))
        chunk = _ok(transmit(bytes([0x00, 0xB0, offset >> 8, offset & 0xFF, want])))
        if not chunk:
            return None, f"NDEF read at offset {offset} failed"
        data += chunk[:want]
    return bytes(data), None


def read_card(atr: bytes, transmit: Transmit, *, read_len: int = 16) -> CardRead:
    """Identify the card behind ``atr`` and read its UID and NDEF message (no timing set)."""
    uid = _ok(transmit(GET_UID)) or b""
    info = parse_atr(atr)
    if info.storage:
        name = info.card_name if info.card_name is not None else -1
        if name not in (0x0003, 0x003A):
            return CardRead(uid, CARD_NAMES.get(name, f"storage card {name:04X}"), None, atr,
                            error="UID-only card (no NDEF)")
        tag_type, message, error = read_type2(transmit, read_len=read_len)
        return CardRead(uid, tag_type, message, atr, error=error)
    message, error = read_type4(transmit)
    return CardRead(uid, "Type4Tag", message, atr, error=error)


# -- the pyscard edge ----------------------------------------------------------------------


def _scard() -> Any:
    try:
        import smartcard.scard as scard
    except ImportError as exc:   # pyscard needs libpcsclite-dev, swig and a compiler
        raise ReaderError("PC/SC support needs pyscard: apt-get install libpcsclite-dev swig "
                          "pcscd, then pip install pyscard") from exc
    return scard


class _Gone(Exception):
    """The reader or pcscd went away; the loop reconnects."""


def list_readers() -> list[str]:
    """Reader names pcscd knows; ReaderError with the fix if pcscd is not reachable."""
    scard = _scard()
    rc, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if rc != scard.SCARD_S_SUCCESS:
        raise ReaderError(f"pcscd not reachable ({scard.SCardGetErrorMessage(rc).strip()}): "
                          "start it with 'systemctl start pcscd' or 'pcscd'")
    try:
        rc, names = scard.SCardListReaders(ctx, [])
        if rc == scard.SCARD_E_NO_READERS_AVAILABLE:
            return []
        if rc != scard.SCARD_S_SUCCESS:
            raise ReaderError(f"pcscd cannot list readers: {scard.SCardGetErrorMessage(rc)}")
        return list(names)
    finally:
        scard.SCardReleaseContext(ctx)


def tag_read(read: CardRead) -> TagRead:
    """The source-neutral read of a PC/SC card read: an exchange that broke off is a failed
    read (tap again); "blank", "foreign" or "UID-only" are what the card is, for classify()."""
    error = read.error or ""
    failed = error if read.ndef is None and any(
        w in error for w in ("failed", "cannot", "unreadable")) else None
    return TagRead(read.uid, read.tag_type, read.ndef, failed=failed,
                   started=read.read_done - read.read_ms / 1000.0, done=read.read_done)


class PcscSource:
    """:class:`~pos_loyalty.nfc.source.TagSource` over one PC/SC reader (through pcscd).

    Each card presented is read once and handed to the sink; a card left on the reader is
    one read, and the sink hears when it is taken away. A read the sink wants again is
    repeated while the card stays. Losing the reader or pcscd is survived: the loop
    reconnects every ``retry_s`` until ``stop`` is set.
    """

    def __init__(self, path: str, *, poll_s: float = 0.2, retry_s: float = 0.25,
                 read_len: int = 16, read_attempts: int = 5) -> None:
        self.path = path
        self.selector = parse_device_path(path)
        self.poll_s = poll_s
        self.retry_s = retry_s
        self.read_len = read_len
        self.read_attempts = read_attempts
        self.reader_name: str | None = None
        self.opened = 0     # times a PC/SC context with our reader was set up
        self.errors = 0
        self._drop = threading.Event()

    @property
    def is_open(self) -> bool:
        return self.reader_name is not None

    def reconnect(self) -> None:
        self._drop.set()  # the loop lets go of the reader at its next poll

    def run(self, sink: TagSink, stop: threading.Event) -> None:
        scard = _scard()
        while not stop.is_set():
            sink.beat()
            rc, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            if rc != scard.SCARD_S_SUCCESS:
                stop.wait(self.retry_s)
                continue
            try:
                self._watch(scard, ctx, sink, stop)
            except _Gone:
                stop.wait(self.retry_s)
            finally:
                scard.SCardReleaseContext(ctx)
                if self.reader_name is not None:
                    self.reader_name = None
                    sink.on_state(False)

    def _watch(self, scard: Any, ctx: Any, sink: TagSink, stop: threading.Event) -> None:
        rc, names = scard.SCardListReaders(ctx, [])
        name = choose_reader(list(names), self.selector) if rc == scard.SCARD_S_SUCCESS \
            else None
        if name is None:
            raise _Gone
        self.reader_name = name
        self._drop.clear()
        self.opened += 1
        log.info("PC/SC reader open: %s", name)
        sink.on_state(True)
        state = scard.SCARD_STATE_UNAWARE
        present = False
        timeout_ms = int(self.poll_s * 1000)
        while not stop.is_set():
            sink.beat()
            if self._drop.is_set():
                raise _Gone
            rc, states = scard.SCardGetStatusChange(ctx, timeout_ms, [(name, state)])
            if rc == scard.SCARD_E_TIMEOUT:
                continue
            if rc != scard.SCARD_S_SUCCESS:
                raise _Gone
            _, event, atr = states[0]
            state = event & ~scard.SCARD_STATE_CHANGED
            if event & (scard.SCARD_STATE_UNKNOWN | scard.SCARD_STATE_UNAVAILABLE):
                raise _Gone
            now_present = bool(event & scard.SCARD_STATE_PRESENT) and \
                not event & scard.SCARD_STATE_MUTE
            if now_present and not present:
                self._deliver(scard, ctx, name, bytes(atr), sink, stop)
            elif present and not now_present:
                sink.on_present()  # taken away: the debounce counts from now
            present = now_present

    def _deliver(self, scard: Any, ctx: Any, name: str, atr: bytes, sink: TagSink,
                 stop: threading.Event) -> None:
        """Read the card and hand it over; read it again while the sink asks and it stays."""
        read = self._read_retrying(scard, ctx, name, atr, stop, first=True)
        while read is not None and not sink.on_read(tag_read(read)):
            read = self._read_retrying(scard, ctx, name, atr, stop, first=False)

    def _read_retrying(self, scard: Any, ctx: Any, name: str, atr: bytes,
                       stop: threading.Event, *, first: bool) -> CardRead | None:
        """Read the card, trying again while it stays present: a reader (or pcscd) can fail
        one exchange when a card is swapped between two of its presence polls."""
        for attempt in range(self.read_attempts):
            if attempt or not first:
                if stop.wait(self.retry_s if attempt else 0):
                    return None
                rc, states = scard.SCardGetStatusChange(ctx, 0, [(name, 0)])
                if rc != scard.SCARD_S_SUCCESS or not states[0][1] & scard.SCARD_STATE_PRESENT:
                    return None
                atr = bytes(states[0][2])
            read = self._read(scard, ctx, name, atr)
            if read is not None:
                return read
            self.errors += 1
        return None

    def _read(self, scard: Any, ctx: Any, name: str, atr: bytes) -> CardRead | None:
        start = time.perf_counter()
        rc, card, proto = scard.SCardConnect(ctx, name, scard.SCARD_SHARE_SHARED,
                                             scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1)
        if rc != scard.SCARD_S_SUCCESS:
            return None     # card left before we could connect: not a tap

        class _Lost(Exception):
            pass

        def transmit(apdu: bytes) -> bytes:
            rc, resp = scard.SCardTransmit(card, proto, list(apdu))
            if rc != scard.SCARD_S_SUCCESS:
                raise _Lost
            return bytes(resp)

        try:
            read = read_card(atr, transmit, read_len=self.read_len)
        except _Lost:
            return None     # card removed mid-read: the next presentation is a new tap
        finally:
            scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
        done = time.perf_counter()
        return CardRead(read.uid, read.tag_type, read.ndef, read.atr, read.error,
                        read_done=done, read_ms=(done - start) * 1000.0)
