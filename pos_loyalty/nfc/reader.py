"""The reader edge: nfcpy's ContactlessFrontend in a sense loop, turning taps into TapEvents.

One blocking :meth:`Reader.run` loop per reader. It opens the device by nfcpy path (``usb``,
``usb:054c:06c3``, ``tty:USB0:pn532``, ``udp:127.0.0.1:PORT`` for simulated RF), and calls
``connect(rdwr=...)`` again and again. The on-connect handler reads the NDEF message, asks the
pure :func:`~pos_loyalty.nfc.cardformat.classify` what the tag is, hands the TapEvent to
``on_tap`` and returns True, so nfcpy waits for the tag to leave: a card held on the reader is
one tap. A card that comes back within ``debounce_s`` of last being seen is not reported again.

Nothing a tag does stops the loop: read errors become a "tap again" refusal, an nfcpy failure
is logged, and a lost device (unplugged, closed) is closed and reopened with a short backoff.
The device is always closed when the loop returns. With ``trust=None`` the reader trusts the
published demo issuer key only (see :mod:`pos_loyalty.nfc.demo_keys`): what ``pos-loyalty run``
with no configuration and the demo need; a configured terminal passes its own CardTrust.
nfcpy's exceptions stay here: opening a path that cannot work raises
:class:`~pos_loyalty.errors.ReaderError`. ``pcsc``/``pcsc:N``/``pcsc:NAME`` paths go to the
PC/SC backend (:mod:`pos_loyalty.nfc.pcsc`, pyscard over pcscd) for the ACS readers nfcpy does
not drive well; its reads are classified the same way.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import nfc
import nfc.clf
import nfc.tag
import nfc.tag.tt2

from pos_loyalty.errors import ReaderError
from pos_loyalty.nfc.cardformat import CardTrust, classify
from pos_loyalty.nfc.demo_keys import demo_trust
from pos_loyalty.nfc.events import TapEvent

log = logging.getLogger(__name__)

_PATH_RE = re.compile(r"(usb|tty|com|udp|pcsc)(:.*)?")
_REOPEN_MIN_S = 0.1
LEGACY_TAG_TYPE = "MIFARE Classic"  # tag_type of SAK 0x08/0x18 cards (UID only)
_REOPEN_MAX_S = 1.0


def tag_type_name(tag: Any) -> str:
    """nfcpy's product name without the vendor prefix ("NTAG213", "Type2Tag", "Type4Tag")."""
    sel_res = getattr(tag.target, "sel_res", None)
    if tag.type == "Type2Tag" and sel_res and sel_res[0] & 0x18:
        return LEGACY_TAG_TYPE  # SAK 0x08/0x18: nfcpy falls back to a generic Type 2 tag
    product = str(tag.product)
    return product[4:] if product.startswith("NXP ") else product


def _ndef_formatted(tag: Any) -> bool:
    """A Type 2 tag whose capability container announces NDEF (read once more to see)."""
    if not isinstance(tag, nfc.tag.tt2.Type2Tag):
        return False
    return bool(tag.read(0)[12] == 0xE1)


def open_frontend(path: str) -> Any:
    """Open an nfcpy ContactlessFrontend on ``path``; ReaderError if it cannot be opened."""
    try:
        return nfc.ContactlessFrontend(path)
    except OSError as exc:
        code = exc.errno
        if code == errno.EACCES:
            hint = "permission denied (install hardware/99-pos-loyalty-nfc.rules; user in plugdev)"
        elif code == errno.EBUSY:
            hint = "device busy (a kernel NFC driver such as pn533_usb or port100 holds it?)"
        elif code == errno.ENODEV:
            hint = "no such reader (unplugged?)"
        else:
            hint = str(exc)
        raise ReaderError(f"cannot open NFC reader {path!r}: {hint}") from exc
    except (ValueError, nfc.clf.Error) as exc:
        raise ReaderError(f"cannot open NFC reader {path!r}: {exc}") from exc


def pcsc_event(read: Any, trust: CardTrust) -> TapEvent:
    """The TapEvent for a card read by the PC/SC backend (a ``pcsc.CardRead``)."""
    event = classify(bytes(read.uid), str(read.tag_type), read.ndef, trust)
    error = read.error or ""
    if read.ndef is None and event.kind == "refused" and ("failed" in error or
                                                          "cannot" in error or
                                                          "unreadable" in error):
        event = dataclasses.replace(event, reason=f"could not read the card ({error}): "
                                                  "tap again")
    return dataclasses.replace(event, read_done=read.read_done, read_ms=read.read_ms)


class _Heartbeat(threading.Event):
    """The stop event as the PC/SC loop sees it: each look at it is a sign of life."""

    def __init__(self, stop: threading.Event, reader: Reader) -> None:
        super().__init__()
        self._stop, self._reader = stop, reader

    def is_set(self) -> bool:
        self._reader._beat()
        return self._stop.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        self._reader._beat()
        return self._stop.wait(timeout)


class Reader:
    """Blocking sense loop over one nfcpy reader; see the module docstring."""

    def __init__(self, path: str, *, trust: CardTrust | None = None,
                 debounce_s: float = 1.0,
                 on_state: Callable[[bool], None] | None = None) -> None:
        if _PATH_RE.fullmatch(path) is None:
            raise ReaderError(
                f"unknown NFC reader path {path!r}: expected usb[:...], tty:PORT:DRIVER, "
                "com:PORT:DRIVER, udp:HOST:PORT or pcsc[:N|:NAME]")
        self.path = path
        if trust is None:
            # no configuration: trust the published demo issuer (simulation only), loudly
            log.warning("no card trust configured: accepting demo-key cards (simulation only)")
            trust = demo_trust()
        self.trust = trust
        self.debounce_s = debounce_s
        self._on_state = on_state
        self._simulated = path.startswith("udp")
        self._clf: Any = None
        self._clf_lock = threading.Lock()
        self._last_uid: bytes | None = None
        self._last_seen = 0.0
        self._discovered = 0.0
        self._heartbeat = time.monotonic()
        self._retry_uid: bytes | None = None  # read once more before refusing this UID
        self.opened = 0  # times the device was opened, for tests and diagnostics
        self.taps = 0  # TapEvents delivered
        self.errors = 0  # failures survived

    # -- control from other threads --------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """True while the loop holds an open device."""
        with self._clf_lock:
            return self._clf is not None

    def heartbeat_age(self) -> float:
        """Seconds since the sense loop last made progress (for a watchdog); grows if hung."""
        return time.monotonic() - self._heartbeat

    def reconnect(self) -> None:
        """Close the open device under the loop, as an unplug would; the loop reopens it."""
        with self._clf_lock:
            clf = self._clf
        if clf is not None:
            clf.close()

    # -- the loop --------------------------------------------------------------------------

    def run(self, on_tap: Callable[[TapEvent], None], stop: threading.Event) -> None:
        """Sense and report taps until ``stop`` is set; survives bad tags and reader loss."""
        if self.path.startswith("pcsc"):
            self._run_pcsc(on_tap, stop)
            return
        backoff = _REOPEN_MIN_S
        warned = False
        while not stop.is_set():
            self._heartbeat = time.monotonic()
            try:
                clf = open_frontend(self.path)
            except ReaderError as exc:
                if not warned:
                    log.warning("%s; retrying", exc)
                    warned = True
                stop.wait(backoff)
                backoff = min(backoff * 2, _REOPEN_MAX_S)
                continue
            warned = False
            backoff = _REOPEN_MIN_S
            with self._clf_lock:
                self._clf = clf
            self.opened += 1
            log.info("NFC reader open: %s", clf)
            self._state(True)
            try:
                self._sense_until_lost(clf, on_tap, stop)
            finally:
                with self._clf_lock:
                    self._clf = None
                clf.close()
                self._state(False)
            if not stop.is_set():
                stop.wait(_REOPEN_MIN_S)

    def _run_pcsc(self, on_tap: Callable[[TapEvent], None], stop: threading.Event) -> None:
        """PC/SC readers (ACS and other CCID): pcscd reads, classify() decides, as for nfcpy."""
        from pos_loyalty.nfc import pcsc

        backend = pcsc.PcscReader(self.path, debounce_s=self.debounce_s)

        def on_read(read: pcsc.CardRead) -> None:
            event = pcsc_event(read, self.trust)
            self.taps += 1
            try:
                on_tap(event)
            except Exception:
                self.errors += 1
                log.exception("tap handler failed for %s", event.uid)

        self._state(True)
        try:
            backend.run_reads(on_read, _Heartbeat(stop, self))
        finally:
            self._state(False)

    def _beat(self) -> None:
        self._heartbeat = time.monotonic()

    def _state(self, up: bool) -> None:
        if self._on_state is not None:
            try:
                self._on_state(up)
            except Exception:
                log.exception("reader state callback failed")

    def _sense_until_lost(self, clf: Any, on_tap: Callable[[TapEvent], None],
                          stop: threading.Event) -> None:
        rdwr = {
            "targets": ["106A"] if self._simulated else ["106A", "106B", "212F"],
            # udp: each empty poll already waits 1 s; hardware: poll every 0.1 s
            "iterations": 1 if self._simulated else 2,
            "interval": 0.1,
            "on-discover": self._on_discover,
            "on-connect": lambda tag: self._on_connect(tag, on_tap),
            "on-release": self._on_release,
            "beep-on-connect": not self._simulated,
        }
        def terminate() -> bool:
            self._heartbeat = time.monotonic()  # nfcpy asks between polls and while held
            return stop.is_set()

        while not stop.is_set():
            try:
                result = clf.connect(rdwr=rdwr, terminate=terminate)
            except Exception:
                # nfcpy lets some errors out of connect (e.g. a link error in the presence
                # check becomes RuntimeError): log, and reopen the device to start clean.
                self.errors += 1
                log.exception("NFC reader error; reopening %s", self.path)
                return
            if result is False:  # nfcpy's signal for an I/O error: the device is gone
                if not stop.is_set():
                    self.errors += 1
                    log.warning("NFC reader %s lost; reopening", self.path)
                return
            if isinstance(result, nfc.tag.Tag) and self._retry_uid is None:
                try:
                    self._wait_removed(clf, result, stop)
                except OSError:
                    self.errors += 1
                    log.warning("NFC reader %s lost; reopening", self.path)
                    return

    def _wait_removed(self, clf: Any, tag: Any, stop: threading.Event) -> None:
        """Presence check for cards nfcpy cannot read (legacy): sense until the UID is gone.

        Any Type A card is sensed, not only this UID, so a different card put down right
        after this one ends the wait at once and is read by the next connect().
        """
        uid = bytes(tag.identifier)
        while not stop.is_set():
            try:
                found = clf.sense(nfc.clf.RemoteTarget("106A"), iterations=1)
            except nfc.clf.CommunicationError:
                found = None
            if found is None or bytes(found.sdd_res) != uid:
                break
            self._last_seen = self._heartbeat = time.monotonic()
            stop.wait(0.1)
        self._last_seen = time.monotonic()

    # -- nfcpy callbacks (run in the loop's thread) ---------------------------------------

    def _on_discover(self, target: Any) -> bool:
        sdd_res = getattr(target, "sdd_res", None)
        if self._retry_uid is None or sdd_res is None or bytes(sdd_res) != self._retry_uid:
            self._retry_uid = None  # another card: forget the pending second read
            self._discovered = time.perf_counter()
        # else: the second read of the same card; its latency counts from the first
        sel_res = getattr(target, "sel_res", None)
        return not (sel_res and sel_res[0] & 0x40)  # skip peer-to-peer (NFC-DEP) devices

    def _on_release(self, tag: Any) -> bool:
        self._last_seen = time.monotonic()
        return True

    def _read(self, tag: Any) -> tuple[TapEvent, bool]:
        """The tag's event, and whether reading it once more might change the verdict."""
        uid = bytes(tag.identifier)
        tag_type = tag_type_name(tag)
        moved = TapEvent("refused", uid.hex().upper(), tag_type,
                         reason="card moved away during reading: tap again")
        try:
            ndef_data = tag.ndef
            octets = None if ndef_data is None else bytes(ndef_data.octets)
            if octets is None and tag_type != LEGACY_TAG_TYPE and _ndef_formatted(tag):
                # nfcpy turns a Type 2 read that failed half-way into "no NDEF"
                return moved, True
        except (nfc.tag.TagCommandError, nfc.clf.CommunicationError) as exc:
            log.info("tag %s read failed: %s", uid.hex().upper(), exc)
            return moved, True
        event = classify(uid, tag_type, octets, self.trust)
        return event, event.kind == "refused" and tag_type != LEGACY_TAG_TYPE

    def _on_connect(self, tag: Any, on_tap: Callable[[TapEvent], None]) -> bool:
        uid = bytes(tag.identifier)
        try:
            event, retry = self._read(tag)
        except OSError:
            raise  # the device itself failed: nfcpy's connect turns this into "device lost"
        except Exception:
            self.errors += 1
            log.exception("unexpected error reading tag %s", tag)
            event, retry = TapEvent(
                "refused", uid.hex().upper(), tag_type_name(tag),
                reason="unreadable tag: tap again or use another card"), True
        if retry and self._retry_uid != uid:
            # a failed or refused read is read once more from a fresh activation before it
            # is reported: a card at the edge of the field, or a late answer on a loaded
            # host, must not make a genuine card look damaged or forged
            log.debug("tag %s: reading once more before refusing", uid.hex().upper())
            self._retry_uid = uid
            return False
        self._retry_uid = None
        done = time.perf_counter()
        event = dataclasses.replace(
            event, read_done=done, read_ms=(done - self._discovered) * 1000.0)
        now = time.monotonic()
        repeat = uid == self._last_uid and now - self._last_seen < self.debounce_s
        self._last_uid, self._last_seen = uid, now
        if repeat:
            log.debug("tag %s debounced", event.uid)
            return event.tag_type != LEGACY_TAG_TYPE
        self.taps += 1
        try:
            on_tap(event)
        except Exception:
            self.errors += 1
            log.exception("tap handler failed for %s", event.uid)
        # nfcpy's presence check reads page 0, which a UID-only card refuses: hand such a
        # card back (False) and check its presence by re-selecting it in _wait_removed
        return event.tag_type != LEGACY_TAG_TYPE
