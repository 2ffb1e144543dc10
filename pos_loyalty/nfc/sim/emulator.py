"""The tag side of nfcpy's ``udp`` driver: one bound socket, ISO 14443-3 done here, frames to a tag.

nfcpy's reader (``ContactlessFrontend('udp:HOST:PORT')``) sends one frame per datagram as
``b"<brty> <hex>"`` from a fresh ephemeral port on every sense cycle, and ``RFOFF`` when it
switches its field off. This emulator binds its port once for its whole life (re-binding loses
the reader's next frame and costs it a 1 s sense timeout), answers each datagram to the address
it came from, and models one RF field with at most one tag in it:

- ``RFOFF``: the field went off, the presented tag is reset to idle.
- ``26`` (REQA) / ``52`` (WUPA): answered with the tag's ATQA; this starts a new activation
  (the tag is reset). A halted tag answers WUPA only.
- ``93 20`` / ``95 20`` / ``97 20`` and ``93 70 ..`` / ``95 70 ..`` / ``97 70 ..``: anticollision
  and select for 4, 7 and 10 byte UIDs, with cascade tags and BCCs; SAK 0x04 while a cascade
  level follows, then the tag's own SAK.
- ``50 00`` (HLTA): the tag halts.
- Anything else after selection goes to ``tag.handle()`` unchanged (Type 2 commands, or RATS and
  ISO-DEP blocks for Type 4), and its answer, if any, goes back.

With no tag presented the emulator stays silent. A reader whose REQA arrived just before a tag
was presented is answered at once on ``present()`` (it is still waiting for that answer), so a
tap on the simulated path takes milliseconds rather than up to the udp driver's 1 s poll.
"""

from __future__ import annotations

import binascii
import ipaddress
import logging
import select
import socket
import threading
import time
from enum import Enum
from functools import reduce
from operator import xor
from types import TracebackType

from pos_loyalty.nfc.sim.base import EmulatedTag

log = logging.getLogger(__name__)

_MAX_DATAGRAM = 2048  # the udp driver never sends more than ~600 bytes; larger is dropped
_PENDING_REQA_S = 0.9  # nfcpy waits 1.0 s for SENS_RES; answer a REQA younger than this
_BRTY_A = (b"106A", b"212A", b"424A")
_SEL_CMDS = (0x93, 0x95, 0x97)


class _State(Enum):
    IDLE = "idle"  # field off or tag not yet woken
    READY = "ready"  # ATQA sent, cascade levels being resolved
    ACTIVE = "active"  # selected: frames go to the tag
    HALT = "halt"  # HLTA received: only WUPA wakes it


def cascade_levels(uid: bytes) -> list[bytes]:
    """The 5-byte anticollision answers (4 UID or cascade-tag bytes + BCC) for each level."""
    if len(uid) not in (4, 7, 10):
        raise ValueError(f"UID must be 4, 7 or 10 bytes, not {len(uid)}")
    if len(uid) == 4:
        parts = [uid]
    elif len(uid) == 7:
        parts = [b"\x88" + uid[0:3], uid[3:7]]
    else:
        parts = [b"\x88" + uid[0:3], b"\x88" + uid[3:6], uid[6:10]]
    return [p + bytes([reduce(xor, p)]) for p in parts]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class TagEmulator:
    """UDP tag side for nfcpy's udp driver: present and remove emulated tags while it runs."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if not _is_loopback(host):
            raise ValueError(f"the tag emulator binds loopback only, not {host!r}")
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self._sock.bind(("127.0.0.1" if host == "localhost" else host, port))
        except OSError:
            self._sock.close()
            raise
        self._lock = threading.Lock()
        self._tag: EmulatedTag | None = None
        self._levels: list[bytes] = []
        self._state = _State.IDLE
        self._level = 0  # cascade levels selected so far
        self._pending_reqa: tuple[tuple[str, int], bytes, bytes, float] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.frames_in = 0  # datagrams received, for tests and diagnostics

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The UDP port the emulator is bound to (the reader path is ``udp:127.0.0.1:PORT``)."""
        return int(self._sock.getsockname()[1])

    @property
    def path(self) -> str:
        """The nfcpy device path a reader opens to reach this emulator."""
        host, port = self._sock.getsockname()[:2]
        return f"udp:{host}:{port}"

    def start(self) -> None:
        """Start answering the reader in a background thread."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._serve, name="tag-emulator", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread and release the port."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        self._sock.close()

    def __enter__(self) -> TagEmulator:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the field -------------------------------------------------------------------------

    @property
    def tag(self) -> EmulatedTag | None:
        """The tag currently in the field, if any."""
        with self._lock:
            return self._tag

    @property
    def reader_waiting(self) -> bool:
        """A reader polled the empty field and is still waiting for an answer."""
        with self._lock:
            pending = self._pending_reqa
            return pending is not None and time.monotonic() - pending[3] < _PENDING_REQA_S

    def present(self, tag: EmulatedTag) -> None:
        """Bring ``tag`` into the field (replacing any tag there); it starts idle."""
        levels = cascade_levels(tag.uid)
        with self._lock:
            self._tag = tag
            self._levels = levels
            self._level = 0
            self._state = _State.IDLE
            tag.reset()
            pending, self._pending_reqa = self._pending_reqa, None
            if pending is not None:
                addr, brty, _cmd, at = pending
                if time.monotonic() - at < _PENDING_REQA_S:
                    self._answer_reqa(brty, addr)

    def remove(self) -> None:
        """Take the tag out of the field: from now on the reader hears nothing."""
        with self._lock:
            self._tag = None
            self._levels = []
            self._state = _State.IDLE
            self._level = 0

    # -- the socket thread -----------------------------------------------------------------

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._sock], [], [], 0.1)
                if not ready:
                    continue
                datagram, addr = self._sock.recvfrom(_MAX_DATAGRAM)
            except (OSError, ValueError):
                if self._stop.is_set():
                    return
                log.debug("emulator socket error", exc_info=True)
                continue
            self.frames_in += 1
            self._on_datagram(datagram, addr)

    def _on_datagram(self, datagram: bytes, addr: tuple[str, int]) -> None:
        if datagram.startswith(b"RFOFF"):
            with self._lock:
                self._field_off()
            return
        try:
            brty, hexdata = datagram.split()
            frame = binascii.unhexlify(hexdata)
        except (ValueError, binascii.Error):
            log.debug("ignoring malformed datagram %r", datagram[:64])
            return
        if brty not in _BRTY_A or not frame:
            return  # Type B / F polls: nothing here answers them
        with self._lock:
            answer = self._on_frame(brty, frame, addr)
        if answer is not None:
            self._send(brty, answer, addr)

    def _field_off(self) -> None:
        self._state = _State.IDLE
        self._level = 0
        if self._tag is not None:
            self._tag.reset()

    def _on_frame(self, brty: bytes, frame: bytes, addr: tuple[str, int]) -> bytes | None:
        tag = self._tag
        if frame in (b"\x26", b"\x52"):
            if tag is None:
                self._pending_reqa = (addr, brty, frame, time.monotonic())
                return None
            if self._state is _State.HALT and frame == b"\x26":
                return None
            tag.reset()
            self._state, self._level = _State.READY, 0
            return bytes(tag.sens_res)
        if tag is None:
            return None
        if self._state is _State.READY:
            return self._anticollision(tag, frame)
        if self._state is _State.ACTIVE:
            if frame == b"\x50\x00":
                self._state = _State.HALT
                return None
            return tag.handle(frame)
        return None

    def _anticollision(self, tag: EmulatedTag, frame: bytes) -> bytes | None:
        level = self._level
        if level >= len(self._levels) or len(frame) < 2 or frame[0] != _SEL_CMDS[level]:
            return None
        if frame[1] == 0x20 and len(frame) == 2:
            return self._levels[level]
        if frame[1] == 0x70 and frame[2:] == self._levels[level]:
            self._level += 1
            if self._level < len(self._levels):
                return b"\x04"  # cascade bit: UID not complete
            self._state = _State.ACTIVE
            return bytes([tag.sel_res & 0xFB])
        return None

    def _answer_reqa(self, brty: bytes, addr: tuple[str, int]) -> None:
        tag = self._tag
        assert tag is not None
        tag.reset()
        self._state, self._level = _State.READY, 0
        self._send(brty, bytes(tag.sens_res), addr)

    def _send(self, brty: bytes, data: bytes, addr: tuple[str, int]) -> None:
        try:
            self._sock.sendto(brty + b" " + binascii.hexlify(data), addr)
        except OSError:
            log.debug("could not answer %s:%d", *addr, exc_info=True)
