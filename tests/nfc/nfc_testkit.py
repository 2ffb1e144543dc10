"""Helpers for the NFC tests: a Reader session on an emulator, nfcpy activation of a tag."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import nfc

from pos_loyalty.nfc.cardformat import CardTrust
from pos_loyalty.nfc.events import TapEvent
from pos_loyalty.nfc.reader import Reader
from pos_loyalty.nfc.sim.base import EmulatedTag
from pos_loyalty.nfc.sim.emulator import TagEmulator


class ReaderSession:
    """A Reader running in its own thread against an emulator; taps are collected in order."""

    def __init__(self, emulator: TagEmulator | str, trust: CardTrust, debounce_s: float) -> None:
        """``emulator`` is an in-process TagEmulator, or the udp path of one elsewhere."""
        self._emulator = emulator if isinstance(emulator, TagEmulator) else None
        path = emulator.path if isinstance(emulator, TagEmulator) else emulator
        self.events: queue.Queue[TapEvent] = queue.Queue()
        self.reader = Reader(path, trust=trust, debounce_s=debounce_s)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.reader.run, args=(self.events.put, self.stop))

    @property
    def emulator(self) -> TagEmulator:
        assert self._emulator is not None, "tags live in another process"
        return self._emulator

    def start(self) -> ReaderSession:
        self.thread.start()
        return self

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive(), "reader loop did not stop"

    def next_event(self, timeout: float = 5.0) -> TapEvent:
        return self.events.get(timeout=timeout)

    def tap(self, tag: EmulatedTag, timeout: float = 5.0) -> TapEvent:
        """Present ``tag`` until it has been read, then take it away."""
        self.emulator.present(tag)
        try:
            return self.next_event(timeout)
        finally:
            self.emulator.remove()


def nfcpy_activate(emulator: TagEmulator, tag: EmulatedTag,
                   work: Callable[[Any], Any] | None = None) -> Any:
    """Present ``tag`` and activate it with nfcpy's own connect(); run ``work(tag)`` on it."""
    emulator.present(tag)
    clf = nfc.ContactlessFrontend(emulator.path)
    try:
        deadline = time.monotonic() + 5.0
        found = clf.connect(rdwr={"targets": ["106A"], "on-connect": lambda t: False,
                                  "iterations": 1},
                            terminate=lambda: time.monotonic() > deadline)
        assert found, "nfcpy found no tag"
        return work(found) if work is not None else found
    finally:
        clf.close()
        emulator.remove()
