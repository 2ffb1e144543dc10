"""Provisioning edge: write a signed NDEF message onto an NTAG21x through nfcpy, check, lock.

Used by ``pos-loyalty card issue`` and ``pos-loyalty tag write``. The message is built for the
UID of the tag actually on the reader (signatures are bound to it), written, read back from
the tag and classified exactly as a terminal would, and only then locked: a card that would
not verify is never locked. nfcpy errors become :class:`~pos_loyalty.errors.CardError` or
:class:`~pos_loyalty.errors.ReaderError`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nfc.clf
import nfc.tag
import nfc.tag.tt2_nxp

from pos_loyalty.errors import CardError, ReaderError
from pos_loyalty.nfc.cardformat import CardTrust, classify
from pos_loyalty.nfc.events import TapEvent
from pos_loyalty.nfc.nfcpy_source import open_frontend, tag_type_name


@dataclass(frozen=True)
class Provisioned:
    """What was written: the tag, its NDEF size, how a terminal reads it, and whether locked."""

    uid: str
    tag_type: str
    ndef_bytes: int
    event: TapEvent
    locked: bool


def wait_for_tag(clf: Any, path: str, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    rdwr = {"targets": ["106A"], "on-connect": lambda tag: False, "iterations": 1,
            "beep-on-connect": False}
    tag = clf.connect(rdwr=rdwr, terminate=lambda: time.monotonic() > deadline)
    if tag is False:
        raise ReaderError(f"NFC reader {path!r} stopped answering")
    if tag is None:
        raise CardError(f"no card was presented within {timeout_s:g} s")
    return tag


_CC_SIZE = {"NTAG213": 0x12, "NTAG215": 0x3E, "NTAG216": 0x6D}


def _format_ntag(tag: Any, tag_type: str) -> None:
    """Give an NTAG21x without NDEF data the factory layout: CC (if blank) and an empty TLV.

    nfcpy's own format() cannot program the capability container (one-time programmable),
    so a tag whose CC was never written is given the datasheet value here.
    """
    cc = tag.read(3)[0:4]
    if cc == b"\x00\x00\x00\x00" and tag_type in _CC_SIZE:
        tag.write(3, bytes([0xE1, 0x10, _CC_SIZE[tag_type], 0x00]))
    tag.write(4, b"\x03\x00\xfe\x00")  # nfcpy reads the NDEF area again on tag.ndef


def _write(tag: Any, build: Callable[[bytes], bytes], trust: CardTrust,
           lock: bool) -> Provisioned:
    uid = bytes(tag.identifier)
    tag_type = tag_type_name(tag)
    if not isinstance(tag, nfc.tag.tt2_nxp.NTAG21x):
        raise CardError(f"this is a {tag_type}, not an NTAG213/215/216: use an NTAG21x card")
    if tag.ndef is None:
        _format_ntag(tag, tag_type)
        if tag.ndef is None:
            raise CardError("the card has no NDEF area and could not be formatted")
    if not tag.ndef.is_writeable:
        raise CardError("the card is read-only (already issued and locked?)")
    octets = build(uid)
    if len(octets) > tag.ndef.capacity:
        raise CardError(f"{len(octets)} bytes do not fit this {tag_type} "
                        f"({tag.ndef.capacity} bytes): use an NTAG215 or NTAG216")
    tag.ndef.octets = octets
    if tag.ndef.has_changed or tag.ndef is None or bytes(tag.ndef.octets) != octets:
        raise CardError("the card did not keep what was written: tap it again")
    event = classify(uid, tag_type, octets, trust)
    if event.kind == "refused":
        raise CardError(f"the written card would be refused: {event.reason}")
    locked = False
    if lock:
        if not tag.protect():
            raise CardError("the card was written but could not be locked")
        locked = tag.ndef is not None and not tag.ndef.is_writeable
        if not locked:
            raise CardError("the card was written but is still writable after locking")
    return Provisioned(uid.hex().upper(), tag_type, len(octets), event, locked)


def provision(path: str, build: Callable[[bytes], bytes], trust: CardTrust, *,
              lock: bool = True, timeout_s: float = 10.0) -> Provisioned:
    """Wait for a tag on ``path``, write ``build(uid)``, verify it with ``trust``, lock it."""
    clf = open_frontend(path)
    try:
        tag = wait_for_tag(clf, path, timeout_s)
        try:
            return _write(tag, build, trust, lock)
        except (nfc.tag.TagCommandError, nfc.clf.CommunicationError) as exc:
            raise CardError(f"the card moved away while writing ({exc}): tap it again") from exc
        except OSError as exc:
            raise ReaderError(f"NFC reader {path!r} failed while writing: {exc}") from exc
    finally:
        clf.close()
