"""A virtual contactless card for a PC/SC reader: our side of Debian's ``vsmartcard-vpcd``.

``vpcd`` is a pcscd reader driver that waits on a TCP port for a card emulator. Frames both
ways are a 2-byte big-endian length and a payload; a 1-byte payload from vpcd is a control
(00 power off, 01 power on, 02 reset, 04 send the ATR), anything longer is a command APDU
answered with a response APDU. Connecting inserts the card, closing the socket removes it.

The cards answer as a contactless reader such as the ACS ACR122U presents them to PC/SC:

* :class:`StorageCard`: an NTAG21x (NFC Forum Type 2) behind PC/SC part 3 storage-card
  pseudo-APDUs: ``FF CA 00 00 00`` (UID), ``FF B0 00 <page> <Le>`` (read pages),
  ``FF D6 00 <page> 04 <data>`` (write one page); ATR with the PC/SC RID and card name.
* :class:`IsoCard`: an ISO 14443-4 card (our emulated Type 4 tags): ``FF CA`` for the UID,
  everything else goes to the tag's APDU handler (the reader does ISO-DEP itself).

The card models are pure; :class:`VpcdCardEmulator` is the socket edge (loopback only), and
:class:`VirtualPcscStack` brings up pcscd with the vpcd reader for it.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import struct
import subprocess
import threading
import time
from functools import reduce
from pathlib import Path
from typing import Protocol

from pos_loyalty.errors import ReaderError
from pos_loyalty.nfc.sim.type4 import IsoDepTarget

SW_OK = b"\x90\x00"
SW_WRONG_LENGTH = b"\x67\x00"
SW_NOT_ALLOWED = b"\x69\x81"
SW_NOT_SUPPORTED = b"\x6a\x81"
SW_BAD_P1P2 = b"\x6a\x86"
SW_WRONG_OFFSET = b"\x6b\x00"

PCSC_RID = bytes.fromhex("A000000306")
#: PC/SC part 3 card names (supplemental document), the ones we emulate or recognise.
CARD_NAME_MIFARE_CLASSIC_1K = 0x0001
CARD_NAME_MIFARE_ULTRALIGHT = 0x0003     # also NTAG21x on ACS readers
STANDARD_ISO14443A_3 = 0x03

#: NTAG21x: (pages, capability-container data size byte)
NTAG_LAYOUT = {"NTAG213": (45, 0x12), "NTAG215": (135, 0x3E), "NTAG216": (231, 0x6D)}


def _with_tck(body: bytes) -> bytes:
    """Append the ATR check byte: XOR of every byte after TS."""
    return body + bytes([reduce(lambda a, b: a ^ b, body[1:], 0)])


def storage_card_atr(card_name: int, standard: int = STANDARD_ISO14443A_3) -> bytes:
    """The ATR a PC/SC part 3 reader builds for a storage card (e.g. 3B8F8001804F0CA0...)."""
    app = PCSC_RID + bytes([standard]) + card_name.to_bytes(2, "big") + bytes(4)
    return _with_tck(bytes([0x3B, 0x8F, 0x80, 0x01, 0x80, 0x4F, len(app)]) + app)


def iso_card_atr(historical: bytes) -> bytes:
    """The ATR a PC/SC reader builds for an ISO 14443-4 A card from its ATS historical bytes."""
    if len(historical) > 15:
        raise ValueError("at most 15 historical bytes")
    return _with_tck(bytes([0x3B, 0x80 | len(historical), 0x80, 0x01]) + historical)


class VirtualCard(Protocol):
    """What :class:`VpcdCardEmulator` needs from a card."""

    atr: bytes

    def power_on(self) -> None: ...

    def apdu(self, command: bytes) -> bytes: ...


def ntag_memory(uid: bytes, ndef_message: bytes, product: str = "NTAG213") -> bytearray:
    """NTAG21x memory with the UID pages, the NDEF capability container and an NDEF TLV."""
    if len(uid) != 7:
        raise ValueError("NTAG21x has a 7-byte UID")
    pages, cc_size = NTAG_LAYOUT[product]
    memory = bytearray(pages * 4)
    bcc0 = 0x88 ^ uid[0] ^ uid[1] ^ uid[2]
    bcc1 = uid[3] ^ uid[4] ^ uid[5] ^ uid[6]
    memory[0:12] = uid[:3] + bytes([bcc0]) + uid[3:] + bytes([bcc1, 0x48, 0x00, 0x00])
    memory[12:16] = bytes([0xE1, 0x10, cc_size, 0x00])
    n = len(ndef_message)
    tlv = (bytes([0x03, n]) if n < 0xFF else b"\x03\xff" + n.to_bytes(2, "big"))
    tlv += ndef_message + b"\xfe"
    if len(tlv) > cc_size * 8:
        raise ValueError(f"NDEF message of {n} bytes does not fit an {product}")
    memory[16:16 + len(tlv)] = tlv
    return memory


class StorageCard:
    """An NTAG21x as a PC/SC part 3 storage card (UID, READ BINARY, UPDATE BINARY)."""

    def __init__(self, uid: bytes, memory: bytearray,
                 card_name: int = CARD_NAME_MIFARE_ULTRALIGHT) -> None:
        self.uid = bytes(uid)
        self.memory = memory
        self.atr = storage_card_atr(card_name)

    def power_on(self) -> None:
        """Nothing to reset: a Type 2 tag keeps no session state."""

    def apdu(self, command: bytes) -> bytes:
        if len(command) < 5 or command[0] != 0xFF:
            return SW_NOT_SUPPORTED
        ins, p1, p2, lc = command[1], command[2], command[3], command[4]
        if ins == 0xCA:
            if p1 != 0x00:
                return SW_NOT_SUPPORTED
            return self.uid + SW_OK
        pages = len(self.memory) // 4
        if ins == 0xB0:
            le = lc or 256
            if p1 != 0 or len(command) != 5:
                return SW_BAD_P1P2 if p1 else SW_WRONG_LENGTH
            if le > 16 or le % 4:
                return SW_WRONG_LENGTH
            if p2 >= pages:
                return SW_WRONG_OFFSET
            start = p2 * 4
            return bytes(self.memory[start:start + le]).ljust(le, b"\x00") + SW_OK
        if ins == 0xD6:
            if p1 != 0:
                return SW_BAD_P1P2
            if lc != 4 or len(command) != 9:
                return SW_WRONG_LENGTH
            if p2 < 3 or p2 >= pages:
                return SW_NOT_ALLOWED
            self.memory[p2 * 4:p2 * 4 + 4] = command[5:9]
            return SW_OK
        return SW_NOT_SUPPORTED


class IsoCard:
    """An emulated ISO 14443-4 tag seen through a PC/SC reader (the reader runs ISO-DEP)."""

    def __init__(self, tag: IsoDepTarget, historical: bytes | None = None) -> None:
        self.tag = tag
        hist = historical if historical is not None else _historical(tag.ats)
        self.atr = iso_card_atr(hist)

    def power_on(self) -> None:
        """A new field: the tag starts a new activation (a new tap for an NTAG 424 DNA)."""
        self.tag.reset()
        self.tag.activated()

    def apdu(self, command: bytes) -> bytes:
        if command[:2] == b"\xff\xca":
            if len(command) != 5 or command[2] != 0x00:
                return SW_NOT_SUPPORTED
            return self.tag.uid + SW_OK
        if command[:1] == b"\xff":
            return SW_NOT_SUPPORTED
        return self.tag.apdu(command)


def _historical(ats: bytes) -> bytes:
    """The historical bytes of an ATS (after TL, T0 and the interface bytes T0 announces)."""
    if len(ats) < 2:
        return b""
    t0 = ats[1]
    skip = 2 + bin(t0 & 0x70).count("1")
    return ats[skip:ats[0]]


class VpcdCardEmulator:
    """The card side of one vpcd reader slot: connects to vpcd on 127.0.0.1 and stays there.

    A card is "on the reader" while :meth:`insert` has put one there: vpcd's presence polls
    (an ATR request every ~0.4 s) get its ATR. With no card they get an empty answer, which
    vpcd takes as "no card"; we then hang up and connect again at once. :meth:`insert`
    waits until vpcd has seen the slot empty since the last card, so pcscd always notices a
    card swap (vpcd would otherwise hand the new card the old card's ATR and handle).
    """

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self._card: VirtualCard | None = None
        self._lock = threading.Lock()
        self._absent_seen = threading.Event()
        self._absent_seen.set()         # nothing was ever on the reader
        self._closed = threading.Event()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.apdus = 0          # command APDUs answered since creation (for tests and benches)

    def start(self) -> None:
        """Start the connection thread (insert() does it if needed)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="vpcd-card", daemon=True)
            self._thread.start()

    def insert(self, card: VirtualCard, timeout: float = 5.0) -> None:
        """Put ``card`` on the reader (removing any card already there)."""
        self.start()
        self.remove()
        if not self._absent_seen.wait(timeout):
            raise ReaderError(f"vpcd on {self.host}:{self.port} is not polling the slot")
        card.power_on()         # a new field: the card starts afresh
        with self._lock:
            self._card = card

    def remove(self) -> None:
        """Take the card off the reader."""
        with self._lock:
            if self._card is not None:
                self._card = None
                self._absent_seen.clear()

    def close(self, timeout: float = 5.0) -> None:
        """Remove the card, let vpcd see the empty slot, then disconnect for good."""
        self.remove()
        if self._thread is not None:
            self._absent_seen.wait(timeout)
        self._closed.set()
        with self._lock:
            sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):      # vpcd may have closed it already
                sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def __enter__(self) -> VpcdCardEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        while not self._closed.is_set():
            try:
                sock = socket.create_connection((self.host, self.port), timeout=1.0)
            except OSError:
                self._closed.wait(0.05)     # vpcd not listening (yet, or any more)
                continue
            sock.settimeout(None)
            # small answers go out at once (see _recv_exact for the other half of the story)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sock = sock
            try:
                self._serve(sock)
            finally:
                with self._lock:
                    self._sock = None
                sock.close()

    def _serve(self, sock: socket.socket) -> None:
        try:
            while not self._closed.is_set():
                header = _recv_exact(sock, 2)
                if header is None:
                    return
                (size,) = struct.unpack(">H", header)
                message = _recv_exact(sock, size)
                if message is None:
                    return
                reply = self._answer(message)
                if reply is not None:
                    sock.sendall(struct.pack(">H", len(reply)) + reply)
                    if not reply:
                        return      # "no card" said: hang up, vpcd waits for us again
        except OSError:
            return          # closed under us or vpcd went away: connect again

    def _answer(self, message: bytes) -> bytes | None:
        with self._lock:
            card = self._card
            if card is None and message == b"\x04":
                self._absent_seen.set()
        if card is None:
            return b"" if message == b"\x04" or len(message) > 1 else None
        if len(message) == 1:
            if message[0] == 0x04:
                return card.atr
            if message[0] in (0x01, 0x02):
                card.power_on()
            return None
        if not message:
            return None
        self.apdus += 1
        return card.apdu(message)


_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        if _QUICKACK is not None:
            # vpcd writes its length prefix and its APDU separately with Nagle on: ack the
            # prefix at once or its APDU waits for our delayed ACK (~40 ms per exchange)
            sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


# -- a virtual PC/SC reader: pcscd with vpcd -------------------------------------------------

VPCD_LIB = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
SYSTEM_VPCD_CONF = Path("/etc/reader.conf.d/vpcd")
PCSCD_SOCKET = Path("/run/pcscd/pcscd.comm")
VIRTUAL_READER_NAME = "ACS ACR122U PICC Interface"


def pcsc_stack_missing() -> str | None:
    """Why a virtual PC/SC reader cannot run here (pyscard, pcscd, vpcd), or None."""
    try:
        import smartcard.scard  # noqa: F401
    except ImportError:
        return "pyscard not installed (needs libpcsclite-dev, swig and a compiler to build)"
    if shutil.which("pcscd") is None:
        return "pcscd not installed (apt-get install pcscd)"
    if not VPCD_LIB.exists():
        return "vsmartcard-vpcd not installed (apt-get install vsmartcard-vpcd)"
    return None


def _pcscd_running() -> bool:
    if not PCSCD_SOCKET.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(PCSCD_SOCKET))
        except OSError:
            return False
        return True


def _system_vpcd() -> tuple[str, int] | None:
    if not SYSTEM_VPCD_CONF.exists():
        return None
    text = SYSTEM_VPCD_CONF.read_text()
    name = re.search(r'^\s*FRIENDLYNAME\s+"([^"]+)"', text, re.M)
    dev = re.search(r"^\s*DEVICENAME\s+/dev/null:(\S+)", text, re.M)
    if not (name and dev):
        return None
    return name.group(1), int(dev.group(1), 0)


def _free_port_pair() -> int:
    """A port P with P+1 also free: vpcd listens on P for slot 0 and P+1 for slot 1."""
    for _ in range(50):
        with socket.socket() as a, socket.socket() as b:
            a.bind(("0.0.0.0", 0))
            port = int(a.getsockname()[1])
            try:
                b.bind(("0.0.0.0", port + 1))
            except OSError:
                continue
            return port
    raise ReaderError("no free port pair for vpcd")


class VirtualPcscStack:
    """pcscd with Debian's vpcd virtual reader, for tests, benches and integrators.

    If a pcscd already serves the system socket and has the vpcd reader of
    /etc/reader.conf.d/vpcd, that one is used. Otherwise :meth:`start` runs our own pcscd in
    the foreground with a private reader.conf.d: vpcd named like an ACS ACR122U on a free
    port pair (vpcd itself listens on all addresses; our card connects over loopback).
    pcscd's client socket path is fixed, so one such stack runs per machine at a time.
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.reader = VIRTUAL_READER_NAME
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def owned(self) -> bool:
        """True when this object runs its own pcscd (and can restart it)."""
        return self.process is not None

    def start(self) -> None:
        """Bring the reader up; ReaderError with the reason if it cannot be done."""
        why = pcsc_stack_missing()
        if why:
            raise ReaderError(why)
        if _pcscd_running():
            system = _system_vpcd()
            if system is None:
                raise ReaderError("a pcscd without the vpcd reader is already running")
            self.reader, self.port = system
            if not self._wait_for_reader(3.0):
                raise ReaderError(f"another pcscd is running without the '{self.reader}' "
                                  "reader (a second virtual stack, e.g. a concurrent test run?)")
            return
        self.port = _free_port_pair()
        conf = self.workdir / "reader.conf.d"
        conf.mkdir(parents=True, exist_ok=True)
        (conf / "vpcd").write_text(f'FRIENDLYNAME "{self.reader}"\n'
                                   f"DEVICENAME /dev/null:{self.port}\nLIBPATH {VPCD_LIB}\n")
        self._launch()

    def _launch(self) -> None:
        log_path = self.workdir / "pcscd.log"
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                ["pcscd", "--foreground", "--config", str(self.workdir / "reader.conf.d")],
                stdout=log, stderr=subprocess.STDOUT)
        if not self._wait_for_reader(15.0) or self.process is None or \
                self.process.poll() is not None:
            self.stop()
            raise ReaderError("pcscd did not come up with the vpcd reader (is another one "
                              "running?): " + log_path.read_text()[-400:])

    def _wait_for_reader(self, timeout: float) -> bool:
        from pos_loyalty.nfc.pcsc import list_readers

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                return False    # ours exited (another pcscd got the socket first?)
            with contextlib.suppress(ReaderError):      # pcscd still starting
                if any(self.reader in name for name in list_readers()):
                    return True
            time.sleep(0.1)
        return False

    def restart(self) -> None:
        """Stop and start our own pcscd, as a reader unplugged and plugged back would."""
        if not self.owned:
            raise ReaderError("the system pcscd is not ours to restart")
        self.stop()
        self._launch()

    def stop(self) -> None:
        """Stop our own pcscd (a system one is left alone)."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def __enter__(self) -> VirtualPcscStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
