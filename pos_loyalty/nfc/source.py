"""Where taps come from: the one interface every reader backend implements.

A :class:`TagSource` owns a device (nfcpy's ContactlessFrontend, a PC/SC reader through
pcscd) and turns it into raw :class:`TagRead` values: the UID, what the tag is, its NDEF
message, or why the read broke off. It knows nothing of cards, keys or debouncing: it hands
each read to a :class:`TagSink` (the reader pipeline in :mod:`pos_loyalty.nfc.reader`), which
classifies, debounces and reports. The sink may ask for a card to be read once more (a
refused or failed first read), and is told when the card is still there or has gone, which
is what the debounce counts from.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

LEGACY_TAG_TYPE = "MIFARE Classic"  # tag_type of UID-only cards (SAK 0x08/0x18)


@dataclass(frozen=True)
class TagRead:
    """One read of one tag, as the device gave it.

    ``ndef`` is None when the tag holds no NDEF data area, ``b""`` when it is empty.
    ``failed`` says why a read broke off (the card moved away, an I/O error): the tag was
    not read and may be fine. ``started``/``done`` are ``time.perf_counter()`` values: when
    the tag was discovered and when its data was in.
    """

    uid: bytes
    tag_type: str
    ndef: bytes | None
    failed: str | None = None
    started: float = 0.0
    done: float = 0.0


class TagSink(Protocol):
    """What a source reports to (the reader pipeline)."""

    def on_read(self, read: TagRead) -> bool:
        """A tag was read. False: read it once more, from a fresh activation, if still there."""

    def on_present(self) -> None:
        """The tag last read is still in the field, or has just left it."""

    def beat(self) -> None:
        """The source's loop is alive (for the watchdog)."""

    def on_state(self, up: bool) -> None:
        """The device was opened (True) or lost (False)."""


class TagSource(Protocol):
    """A reader device delivering :class:`TagRead` values until told to stop."""

    path: str
    opened: int  # times the device was opened
    errors: int  # device failures survived

    def run(self, sink: TagSink, stop: threading.Event) -> None:
        """Read tags into ``sink`` until ``stop`` is set; survive device loss."""

    def reconnect(self) -> None:
        """Drop the device under the loop, as an unplug would; the loop opens it again."""

    @property
    def is_open(self) -> bool:
        """True while the loop holds an open device."""
