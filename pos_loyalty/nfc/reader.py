"""The reader pipeline: tag reads from any source, classified and debounced into TapEvents.

One blocking :meth:`Reader.run` loop per reader. The device is a
:class:`~pos_loyalty.nfc.source.TagSource` chosen by path: nfcpy
(:mod:`pos_loyalty.nfc.nfcpy_source`: ``usb``, ``tty:USB0:pn532``, ``udp:127.0.0.1:PORT`` for
simulated RF) or PC/SC (:mod:`pos_loyalty.nfc.pcsc`: ``pcsc``, ``pcsc:N``, ``pcsc:NAME``, for
the ACS readers nfcpy does not drive well). Whatever the source, every read goes through the
same steps here:

1. a failed read becomes a "tap again" refusal; any other is classified by the pure
   :func:`~pos_loyalty.nfc.cardformat.classify` against the terminal's :class:`CardTrust`
   (there is no default trust: the caller says which keys it trusts);
2. a refusal or failure is read once more from a fresh activation before it is reported:
   a card at the edge of the field, or a late answer on a loaded host, must not make a
   genuine card look damaged or forged;
3. a card that comes back within ``debounce_s`` of last being seen is not reported again;
4. ``on_tap`` gets the TapEvent; nothing it raises stops the loop.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
from collections.abc import Callable

from pos_loyalty.errors import ReaderError
from pos_loyalty.nfc.cardformat import CardTrust, classify
from pos_loyalty.nfc.events import TapEvent
from pos_loyalty.nfc.source import LEGACY_TAG_TYPE, TagRead, TagSource

log = logging.getLogger(__name__)

_PATH_RE = re.compile(r"(usb|tty|com|udp|pcsc)(:.*)?")


def open_source(path: str) -> TagSource:
    """The tag source for a device path; ReaderError for a path no backend knows."""
    if _PATH_RE.fullmatch(path) is None:
        raise ReaderError(
            f"unknown NFC reader path {path!r}: expected usb[:...], tty:PORT:DRIVER, "
            "com:PORT:DRIVER, udp:HOST:PORT or pcsc[:N|:NAME]")
    if path.startswith("pcsc"):
        from pos_loyalty.nfc.pcsc import PcscSource

        return PcscSource(path)
    from pos_loyalty.nfc.nfcpy_source import NfcpySource

    return NfcpySource(path)


def tap_event(read: TagRead, trust: CardTrust) -> TapEvent:
    """What a read is: a refusal for a failed read, else what classify() says."""
    if read.failed is not None:
        return TapEvent("refused", read.uid.hex().upper(), read.tag_type,
                        reason=f"{read.failed}: tap again")
    return classify(read.uid, read.tag_type, read.ndef, trust)


class Reader:
    """One reader: a tag source feeding the classify-and-debounce pipeline (module doc)."""

    def __init__(self, path: str, *, trust: CardTrust, debounce_s: float = 1.0,
                 on_state: Callable[[bool], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.source = open_source(path)
        self.path = path
        self.trust = trust
        self.debounce_s = debounce_s
        self._on_state = on_state
        self._clock = clock
        self._on_tap: Callable[[TapEvent], None] = lambda _event: None
        self._last_uid: bytes | None = None
        self._last_seen = 0.0
        self._retry_uid: bytes | None = None  # asked the source to read this UID once more
        self._heartbeat = clock()
        self.taps = 0  # TapEvents delivered
        self._errors = 0  # tap handler failures survived

    # -- control and health, from other threads ------------------------------------------

    @property
    def opened(self) -> int:
        """Times the device was opened."""
        return self.source.opened

    @property
    def errors(self) -> int:
        """Failures survived: the device's and the tap handler's."""
        return self.source.errors + self._errors

    @property
    def is_open(self) -> bool:
        return self.source.is_open

    def heartbeat_age(self) -> float:
        """Seconds since the loop last made progress (for a watchdog); grows if hung."""
        return self._clock() - self._heartbeat

    def reconnect(self) -> None:
        """Drop the device under the loop, as an unplug would; the loop reopens it."""
        self.source.reconnect()

    def run(self, on_tap: Callable[[TapEvent], None], stop: threading.Event) -> None:
        """Report taps to ``on_tap`` until ``stop`` is set; survives bad tags and reader loss."""
        self._on_tap = on_tap
        self.source.run(self, stop)

    # -- TagSink: called by the source, in the loop's thread ----------------------------

    def beat(self) -> None:
        self._heartbeat = self._clock()

    def on_state(self, up: bool) -> None:
        if self._on_state is not None:
            try:
                self._on_state(up)
            except Exception:
                log.exception("reader state callback failed")

    def on_present(self) -> None:
        self._last_seen = self._clock()

    def on_read(self, read: TagRead) -> bool:
        event = tap_event(read, self.trust)
        doubtful = read.failed is not None or (
            event.kind == "refused" and read.tag_type != LEGACY_TAG_TYPE)
        if doubtful and self._retry_uid != read.uid:
            log.debug("tag %s: reading once more before refusing", event.uid)
            self._retry_uid = read.uid
            return False
        self._retry_uid = None
        done = time.perf_counter()
        event = dataclasses.replace(event, read_done=done,
                                    read_ms=(done - read.started) * 1000.0)
        now = self._clock()
        repeat = bool(read.uid) and read.uid == self._last_uid and \
            now - self._last_seen < self.debounce_s
        self._last_uid, self._last_seen = read.uid, now
        if repeat:
            log.debug("tag %s debounced", event.uid)
            return True
        self.taps += 1
        try:
            self._on_tap(event)
        except Exception:
            self._errors += 1
            log.exception("tap handler failed for %s", event.uid)
        return True
