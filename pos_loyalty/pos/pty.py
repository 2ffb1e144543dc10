"""Two pseudo-terminals joined by a relay: a null-modem cable for tests, demos and benches.

Each side gets a real ``/dev/pts/N`` path that pyserial opens like any serial port. One relay
thread per direction copies bytes from one pty master to the other and can emulate the wire:

- ``baudrate``: pace delivery to the line rate (10 bits per byte, as 8N1);
- ``corrupt_rate``: probability that a byte is replaced by a different byte;
- ``drop_rate``: probability that a chunk (what one read returned, usually one frame) is lost;
- ``dup_rate``: probability that a chunk is delivered twice.

Faults come from a seeded random generator per direction, so a run is reproducible up to
thread timing.
"""

from __future__ import annotations

import contextlib
import os
import random
import select
import threading
import time
import tty
from dataclasses import dataclass

from pos_loyalty.errors import SerialLinkError

_CHUNK = 4096
_PACE_PIECE = 16  # bytes written at once when pacing, so a frame trickles like on a wire


@dataclass
class RelayStats:
    """What one direction of the relay did."""

    bytes: int = 0
    chunks: int = 0
    corrupted: int = 0
    dropped: int = 0
    duplicated: int = 0


class PtyBridge:
    """Two ptys (``terminal_path``, ``till_path``) relayed to each other."""

    def __init__(self, corrupt_rate: float = 0.0, drop_rate: float = 0.0,
                 dup_rate: float = 0.0, seed: int = 0, *, baudrate: int | None = None) -> None:
        for name, rate in (("corrupt_rate", corrupt_rate), ("drop_rate", drop_rate),
                           ("dup_rate", dup_rate)):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be within 0..1, not {rate}")
        self.corrupt_rate = corrupt_rate
        self.drop_rate = drop_rate
        self.dup_rate = dup_rate
        self.seed = seed
        self.baudrate = baudrate
        self.to_till = RelayStats()
        """Faults and volume on the terminal -> till direction."""
        self.to_terminal = RelayStats()
        """Faults and volume on the till -> terminal direction."""
        self._fds: list[int] = []
        self._term_master = self._term_slave = self._till_master = self._till_slave = -1
        self.terminal_path = ""
        self.till_path = ""
        self._stop = threading.Event()
        self._wake_r = self._wake_w = -1
        self._threads: list[threading.Thread] = []
        self._open()

    def _open(self) -> None:
        try:
            self._term_master, self._term_slave = os.openpty()
            self._till_master, self._till_slave = os.openpty()
            self._wake_r, self._wake_w = os.pipe()
        except OSError as exc:
            self._close_fds()
            raise SerialLinkError(f"cannot create pseudo-terminals: {exc}") from exc
        self._fds = [self._term_master, self._term_slave, self._till_master, self._till_slave,
                     self._wake_r, self._wake_w]
        # Raw from birth: no echo or line editing before pyserial configures the port.
        for fd in (self._term_slave, self._till_slave):
            tty.setraw(fd)
        # Non-blocking masters: a side nobody reads must stall its relay, not hang it.
        for fd in (self._term_master, self._till_master):
            os.set_blocking(fd, False)
        self.terminal_path = os.ttyname(self._term_slave)
        self.till_path = os.ttyname(self._till_slave)

    def start(self) -> None:
        """Start relaying in both directions."""
        if self._threads:
            return
        rng = random.Random(self.seed)
        specs = [
            (self._term_master, self._till_master, self.to_till, random.Random(rng.random())),
            (self._till_master, self._term_master, self.to_terminal, random.Random(rng.random())),
        ]
        for src, dst, stats, r in specs:
            t = threading.Thread(target=self._relay, args=(src, dst, stats, r),
                                 name="pty-relay", daemon=True)
            self._threads.append(t)
            t.start()

    def close(self) -> None:
        """Stop relaying and destroy both ptys (the paths vanish, like an unplugged adapter)."""
        self._stop.set()
        if self._wake_w >= 0:
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"x")
        for t in self._threads:
            t.join(timeout=5)
        self._threads = []
        self._close_fds()

    def _close_fds(self) -> None:
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []

    def __enter__(self) -> PtyBridge:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- relay -----------------------------------------------------------------------------

    def _relay(self, src: int, dst: int, stats: RelayStats, rng: random.Random) -> None:
        line_free = time.monotonic()
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([src, self._wake_r], [], [], 0.5)
            except (OSError, ValueError):
                return
            if self._stop.is_set():
                return
            if src not in ready:
                continue
            try:
                chunk = os.read(src, _CHUNK)
            except BlockingIOError:
                continue
            except OSError:
                # EIO: nobody has the slave open right now; wait for someone to open it.
                if self._stop.wait(0.05):
                    return
                continue
            if not chunk:
                continue
            stats.bytes += len(chunk)
            stats.chunks += 1
            chunk = self._corrupt(chunk, stats, rng)
            copies = 1
            if self.drop_rate and rng.random() < self.drop_rate:
                stats.dropped += 1
                copies = 0
            elif self.dup_rate and rng.random() < self.dup_rate:
                stats.duplicated += 1
                copies = 2
            for _ in range(copies):
                line_free = self._deliver(dst, chunk, line_free)

    def _corrupt(self, chunk: bytes, stats: RelayStats, rng: random.Random) -> bytes:
        if not self.corrupt_rate:
            return chunk
        data = bytearray(chunk)
        for i in range(len(data)):
            if rng.random() < self.corrupt_rate:
                data[i] ^= rng.randrange(1, 256)
                stats.corrupted += 1
        return bytes(data)

    def _deliver(self, dst: int, data: bytes, line_free: float) -> float:
        """Write ``data`` to ``dst``; when pacing, each piece arrives when the wire would."""
        if self.baudrate is None:
            self._write_all(dst, data)
            return line_free
        per_byte = 10.0 / self.baudrate
        line_free = max(line_free, time.monotonic())
        for i in range(0, len(data), _PACE_PIECE):
            piece = data[i:i + _PACE_PIECE]
            line_free += len(piece) * per_byte
            delay = line_free - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return line_free
            self._write_all(dst, piece)
        return line_free

    def _write_all(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view and not self._stop.is_set():
            try:
                n = os.write(fd, view)
            except BlockingIOError:
                self._stop.wait(0.01)
                continue
            except OSError:
                return  # the other side is gone: the bytes are lost, as on a cut cable
            view = view[n:]
