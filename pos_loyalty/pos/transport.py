"""pyserial edge of the POS link: a port, a reader thread, and the sans-I/O Link inside.

The reader thread blocks in ``read()`` with a short timeout (never a busy loop); each wake-up
feeds the bytes to the :class:`~pos_loyalty.pos.link.Link` and advances its timers, so the read
timeout doubles as the resend/ping timer. ``send()`` may be called from any thread: it queues
the message in the link and writes whatever the link wants written. When the port disappears
(a USB-serial adapter unplugged) the thread reports the link down and reopens the same path
with backoff; a ``/dev/serial/by-id/...`` symlink works like any other path.

Callbacks run in the reader thread and must return quickly; an exception in one is logged and
does not stop the thread. pyserial exceptions never leave this module: they become
SerialLinkError.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

import serial

from pos_loyalty.errors import LocalProtocolError, RemoteProtocolError, SerialLinkError
from pos_loyalty.pos.codec import NEED_DATA
from pos_loyalty.pos.link import (
    Acked,
    Event,
    FrameRejected,
    Hello,
    Link,
    LinkDown,
    LinkStats,
    LinkUp,
    Message,
    PeerNak,
    QueueFull,
    SendFailed,
    Timers,
)
from pos_loyalty.pos.messages import MAX_TEXT_LEN, Error, decode_message, encode_message
from pos_loyalty.pos.messages import Message as AppMessage

log = logging.getLogger(__name__)

READ_TIMEOUT = 0.05
"""Seconds a read blocks at most; the granularity of the link's timers."""
WRITE_TIMEOUT = 2.0
REOPEN_BACKOFF = (0.1, 2.0)
"""First and longest delay between attempts to reopen a lost port, in seconds."""


class SerialEndpoint:
    """One end of the till link over a serial port (or any pyserial URL)."""

    def __init__(self, url: str, on_message: Callable[[AppMessage], None], *,
                 role: Literal["terminal", "till"], baudrate: int = 115200,
                 peer_id: str = "", on_link_state: Callable[[bool], None] | None = None,
                 timers: Timers | None = None,
                 on_event: Callable[[Event], None] | None = None) -> None:
        """``peer_id`` is the id this end announces in its hello (pos_id or terminal id).

        ``on_event`` (optional) sees every link event (acks, NAKs, rejected frames), for
        diagnostics tools such as the conformance checker.
        """
        if role not in ("terminal", "till"):
            raise LocalProtocolError(f"role must be 'terminal' or 'till', not {role!r}")
        self.url = url
        self.role: Literal["terminal", "till"] = role
        self.peer_role: Literal["terminal", "till"] = "till" if role == "terminal" else "terminal"
        self.baudrate = baudrate
        self.peer_id = peer_id
        self._on_message = on_message
        self._on_link_state = on_link_state
        self._on_event = on_event
        self._link = Link(role, peer_id, baudrate=baudrate, timers=timers)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._port: serial.SerialBase | None = None
        self._thread: threading.Thread | None = None
        self._reported_up = False
        self._beat = time.monotonic()
        self.reopen_count = 0

    # -- public surface ------------------------------------------------------------------

    @property
    def link_up(self) -> bool:
        """True while the hello has been exchanged and the peer answers."""
        with self._lock:
            return self._link.up

    @property
    def peer(self) -> Hello | None:
        """The hello the peer sent last (its id, role, max payload)."""
        with self._lock:
            return self._link.peer

    @property
    def alive(self) -> bool:
        """The reader thread runs (it ends only on close() or on a fault, logged)."""
        return self._thread is not None and self._thread.is_alive()

    def heartbeat_age(self) -> float:
        """Seconds since the reader thread last went round its loop (for a watchdog)."""
        return time.monotonic() - self._beat

    @property
    def stats(self) -> LinkStats:
        return self._link.stats

    @property
    def pending(self) -> int:
        """Messages queued or waiting for an ACK."""
        with self._lock:
            return self._link.pending

    def start(self) -> None:
        """Open the port exclusively and start the reader thread; SerialLinkError if not."""
        if self._thread is not None:
            raise SerialLinkError(f"{self.url}: endpoint already started")
        port = self._open()
        with self._lock:
            self._port = port
            self._link.connect(time.monotonic())
            self._flush_locked()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"pos-serial {self.url}",
                                        daemon=True)
        self._thread.start()

    def send(self, message: AppMessage) -> None:
        """Queue ``message`` for the peer; returns at once (thread-safe).

        LocalProtocolError if this side may not send it; SerialLinkError if too many
        messages are already waiting (the link has been down for long).
        """
        payload = encode_message(message, self.role)
        with self._lock:
            try:
                self._link.send(payload, time.monotonic())
            except QueueFull as exc:
                raise SerialLinkError(f"{self.url}: {exc}") from exc
            events = self._drain_locked()
            self._flush_locked()
        self._dispatch(events)

    def close(self) -> None:
        """Stop the reader thread and close the port; queued messages are dropped."""
        self._stop.set()
        with self._lock:
            port = self._port
        if port is not None:
            cancel = getattr(port, "cancel_read", None)  # posix ports: wake a blocked read
            try:
                if cancel is not None:
                    cancel()
            except (serial.SerialException, OSError):
                log.debug("%s: cancel_read failed", self.url, exc_info=True)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._thread = None
        with self._lock:
            self._close_port_locked()
            if self._link.state.value != "CLOSED":
                self._link.close("endpoint closed")
            events = self._drain_locked()
        self._dispatch(events)

    def __enter__(self) -> SerialEndpoint:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- port handling -------------------------------------------------------------------

    def _open(self) -> serial.SerialBase:
        try:
            return serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=READ_TIMEOUT,
                                         write_timeout=WRITE_TIMEOUT, exclusive=True)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise SerialLinkError(f"cannot open serial port {self.url}: {exc}") from exc

    def _close_port_locked(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError) as exc:
                log.debug("%s: error closing port: %s", self.url, exc)

    def _port_lost(self, exc: BaseException) -> None:
        log.warning("%s: serial port lost: %s", self.url, exc)
        with self._lock:
            self._close_port_locked()
            self._link.close(f"serial port lost: {exc}")
            events = self._drain_locked()
        self._dispatch(events)

    def _reopen(self) -> None:
        delay, longest = REOPEN_BACKOFF
        while not self._stop.is_set():
            self._beat = time.monotonic()
            if self._stop.wait(delay):
                return
            try:
                port = self._open()
            except SerialLinkError as exc:
                log.debug("%s", exc)
                delay = min(delay * 2, longest)
                continue
            with self._lock:
                if self._stop.is_set():
                    port.close()
                    return
                self._port = port
                self.reopen_count += 1
                self._link.connect(time.monotonic())
                self._flush_locked()
            log.info("%s: serial port reopened", self.url)
            return

    # -- the reader thread ---------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop()
        except Exception:
            # A fault in our own link code, not the port: the thread ends, and the daemon,
            # which watches it, stops pinging the watchdog and exits non-zero.
            log.exception("%s: serial link thread failed", self.url)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._beat = time.monotonic()
            port = self._port
            if port is None:
                self._reopen()
                continue
            try:
                # Read what is waiting, or block for one byte until READ_TIMEOUT.
                data = port.read(int(getattr(port, "in_waiting", 0)) or 1)
            except (serial.SerialException, OSError, TypeError, ValueError) as exc:
                # TypeError/ValueError: pyserial on a port closed under it (fd None).
                if self._stop.is_set():
                    return
                self._port_lost(exc)
                continue
            now = time.monotonic()
            with self._lock:
                if self._port is not port:
                    continue
                if data:
                    self._link.receive_data(data, now)
                self._link.tick(now)
                events = self._drain_locked()
                self._flush_locked()
            self._dispatch(events)

    def _flush_locked(self) -> None:
        data = self._link.data_to_send()
        if not data or self._port is None:
            return
        try:
            self._port.write(data)
        except (serial.SerialException, OSError) as exc:
            # The reader thread notices the dead port on its next read and reopens it; the
            # link's retransmission brings the frame back after the new hello.
            log.warning("%s: write failed: %s", self.url, exc)

    def _drain_locked(self) -> list[Event]:
        events: list[Event] = []
        while True:
            ev = self._link.next_event()
            if ev is NEED_DATA:
                return events
            events.append(ev)

    # -- callbacks (never under the lock: they may call send()) -----------------------------

    def _dispatch(self, events: list[Event]) -> None:
        for ev in events:
            if self._on_event is not None:
                self._call(self._on_event, ev)
            if isinstance(ev, Message):
                self._deliver(ev.payload)
            elif isinstance(ev, LinkUp):
                log.info("%s: link up with %s %r%s", self.url, ev.peer.role, ev.peer.id,
                         " (peer restarted)" if ev.restarted else "")
                self._report_state(True)
            elif isinstance(ev, LinkDown):
                level = logging.INFO if self._stop.is_set() else logging.WARNING
                log.log(level, "%s: link down: %s", self.url, ev.reason)
                self._report_state(False)
            elif isinstance(ev, SendFailed):
                log.error("%s: message not delivered: %s", self.url, ev.reason)
            elif isinstance(ev, FrameRejected):
                log.info("%s: rejected frame from peer: %s", self.url, ev.reason)
            elif isinstance(ev, PeerNak):
                log.info("%s: peer NAKed frame %02X: %s", self.url, ev.seq, ev.reason)
            elif isinstance(ev, Acked):
                pass

    def _deliver(self, payload: bytes) -> None:
        try:
            message = decode_message(payload, self.peer_role)
        except RemoteProtocolError as exc:
            log.warning("%s: invalid message from the %s: %s", self.url, self.peer_role,
                        exc.reason)
            self._answer_invalid(payload, exc.reason)
            return
        self._call(self._on_message, message)

    def _answer_invalid(self, payload: bytes, reason: str) -> None:
        try:
            encoded = encode_message(Error("invalid_message", reason[:MAX_TEXT_LEN]),
                                     self.role)
            with self._lock:
                self._link.send(encoded, time.monotonic())
                self._flush_locked()
        except LocalProtocolError as exc:
            log.error("%s: cannot answer an invalid message: %s", self.url, exc)

    def _report_state(self, up: bool) -> None:
        if up == self._reported_up:
            return
        self._reported_up = up
        if self._on_link_state is not None:
            self._call(self._on_link_state, up)

    def _call(self, fn: Callable[[Any], None], arg: Any) -> None:
        try:
            fn(arg)
        except Exception:
            log.exception("%s: callback %r raised; the link carries on", self.url, fn)
