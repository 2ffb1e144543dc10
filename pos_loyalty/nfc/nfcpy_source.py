"""The nfcpy tag source: a ContactlessFrontend in a sense loop, turning tags into TagReads.

It opens the device by nfcpy path (``usb``, ``usb:054c:06c3``, ``tty:USB0:pn532``,
``udp:127.0.0.1:PORT`` for simulated RF) and calls ``connect(rdwr=...)`` again and again.
The on-connect handler reads the NDEF message and hands a :class:`TagRead` to the sink; when
the sink has it, the handler returns True so nfcpy waits for the tag to leave (a card held
on the reader is one read). When the sink asks for a second read, the tag is released and
read again from a fresh activation.

Nothing a tag does stops the loop: read errors become failed reads, an nfcpy failure is
logged, and a lost device (unplugged, closed) is closed and reopened with a short backoff.
nfcpy's exceptions stay here: opening a path that cannot work raises
:class:`~pos_loyalty.errors.ReaderError`.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from typing import Any

import nfc
import nfc.clf
import nfc.tag
import nfc.tag.tt2

from pos_loyalty.errors import ReaderError
from pos_loyalty.nfc.source import LEGACY_TAG_TYPE, TagRead, TagSink

log = logging.getLogger("pos_loyalty.nfc.reader")

_REOPEN_MIN_S = 0.1
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


class NfcpySource:
    """:class:`~pos_loyalty.nfc.source.TagSource` over one nfcpy device; see the module doc."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._simulated = path.startswith("udp")
        self._clf: Any = None
        self._clf_lock = threading.Lock()
        self._discovered = 0.0
        self._retry_uid: bytes | None = None  # the sink asked to read this UID once more
        self.opened = 0
        self.errors = 0

    @property
    def is_open(self) -> bool:
        with self._clf_lock:
            return self._clf is not None

    def reconnect(self) -> None:
        with self._clf_lock:
            clf = self._clf
        if clf is not None:
            clf.close()

    def run(self, sink: TagSink, stop: threading.Event) -> None:
        backoff = _REOPEN_MIN_S
        warned = False
        while not stop.is_set():
            sink.beat()
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
            sink.on_state(True)
            try:
                self._sense_until_lost(clf, sink, stop)
            finally:
                with self._clf_lock:
                    self._clf = None
                clf.close()
                sink.on_state(False)
            if not stop.is_set():
                stop.wait(_REOPEN_MIN_S)

    def _sense_until_lost(self, clf: Any, sink: TagSink, stop: threading.Event) -> None:
        rdwr: dict[str, Any] = {
            "targets": ["106A"] if self._simulated else ["106A", "106B", "212F"],
            # udp: each empty poll already waits 1 s; hardware: poll every 0.1 s
            "iterations": 1 if self._simulated else 2,
            "interval": 0.1,
            "on-discover": self._on_discover,
            "on-connect": lambda tag: self._on_connect(tag, sink),
            "on-release": lambda tag: self._on_release(sink),
            "beep-on-connect": not self._simulated,
        }

        def terminate() -> bool:
            sink.beat()  # nfcpy asks between polls and while a tag is held
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
                    self._wait_removed(clf, result, sink, stop)
                except OSError:
                    self.errors += 1
                    log.warning("NFC reader %s lost; reopening", self.path)
                    return

    def _wait_removed(self, clf: Any, tag: Any, sink: TagSink, stop: threading.Event) -> None:
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
            sink.on_present()
            sink.beat()
            stop.wait(0.1)
        sink.on_present()

    # -- nfcpy callbacks (run in the loop's thread) ---------------------------------------

    def _on_discover(self, target: Any) -> bool:
        sdd_res = getattr(target, "sdd_res", None)
        if self._retry_uid is None or sdd_res is None or bytes(sdd_res) != self._retry_uid:
            self._retry_uid = None  # another card: forget the pending second read
            self._discovered = time.perf_counter()
        # else: the second read of the same card; its latency counts from the first
        sel_res = getattr(target, "sel_res", None)
        return not (sel_res and sel_res[0] & 0x40)  # skip peer-to-peer (NFC-DEP) devices

    @staticmethod
    def _on_release(sink: TagSink) -> bool:
        sink.on_present()
        return True

    def _read(self, tag: Any) -> TagRead:
        uid = bytes(tag.identifier)
        tag_type = tag_type_name(tag)
        moved = TagRead(uid, tag_type, None, failed="card moved away during reading")
        try:
            ndef_data = tag.ndef
            octets = None if ndef_data is None else bytes(ndef_data.octets)
            if octets is None and tag_type != LEGACY_TAG_TYPE and _ndef_formatted(tag):
                # nfcpy turns a Type 2 read that failed half-way into "no NDEF"
                return moved
        except (nfc.tag.TagCommandError, nfc.clf.CommunicationError) as exc:
            log.info("tag %s read failed: %s", uid.hex().upper(), exc)
            return moved
        return TagRead(uid, tag_type, octets)

    def _on_connect(self, tag: Any, sink: TagSink) -> bool:
        uid = bytes(tag.identifier)
        try:
            read = self._read(tag)
        except OSError:
            raise  # the device itself failed: nfcpy's connect turns this into "device lost"
        except Exception:
            self.errors += 1
            log.exception("unexpected error reading tag %s", tag)
            read = TagRead(uid, tag_type_name(tag), None, failed="unreadable tag")
        read = TagRead(read.uid, read.tag_type, read.ndef, read.failed,
                       started=self._discovered, done=time.perf_counter())
        if not sink.on_read(read):
            self._retry_uid = uid  # released now; the next activation reads it again
            return False
        self._retry_uid = None
        # nfcpy's presence check reads page 0, which a UID-only card refuses: hand such a
        # card back (False) and check its presence by re-selecting it in _wait_removed
        return read.tag_type != LEGACY_TAG_TYPE
