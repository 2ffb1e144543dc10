"""Emulated Type 4 tags read by nfcpy's real ContactlessFrontend over its udp driver."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import ndef
import nfc
import nfc.tag.tt4
import pytest

from pos_loyalty.nfc import sun
from pos_loyalty.nfc.cardformat import member_card_ndef
from pos_loyalty.nfc.demo_keys import DEMO_ISSUER, demo_trust
from pos_loyalty.nfc.events import TapEvent
from pos_loyalty.nfc.reader import Reader
from pos_loyalty.nfc.sim.base import EmulatedTag
from pos_loyalty.nfc.sim.emulator import TagEmulator
from pos_loyalty.nfc.sim.type4 import Ntag424Dna, PhoneCard, Type4Tag

H = bytes.fromhex
META = H("0F0E0D0C0B0A09080706050403020100")
FILE = H("A0A1A2A3A4A5A6A7A8A9AAABACADAEAF")
BASE = "https://p.example/t"
KEYS = [sun.SunKeyEntry(BASE, "product", META, FILE)]


def _nfcpy_can_use(port: int) -> bool:
    """nfcpy's udp driver turns the port into a service name and int()s it: a free port that
    /etc/services names (57000 is "dircproxy") makes ContactlessFrontend() raise."""
    import socket

    return socket.getnameinfo(("127.0.0.1", port), socket.NI_NUMERICHOST)[1].isdigit()


@pytest.fixture
def emulator() -> Iterator[TagEmulator]:
    for _ in range(20):
        emu = TagEmulator()
        emu.start()
        if _nfcpy_can_use(emu.port):
            break
        emu.close()
    try:
        yield emu
    finally:
        emu.close()


def with_tag(emulator: TagEmulator, tag: EmulatedTag, work: Callable[[Any], Any]) -> Any:
    """Present ``tag``, let nfcpy's connect() activate it, run ``work`` on nfcpy's tag object."""
    emulator.present(tag)
    clf = nfc.ContactlessFrontend(emulator.path)
    try:
        deadline = time.monotonic() + 10.0
        found = clf.connect(rdwr={"targets": ["106A"], "on-connect": lambda t: False,
                                  "iterations": 1},
                            terminate=lambda: time.monotonic() > deadline)
        assert isinstance(found, nfc.tag.Tag), "nfcpy found no tag"
        return work(found)
    finally:
        clf.close()
        emulator.remove()


def sun_iri(t4: Any) -> str:
    assert t4.ndef is not None
    return str(t4.ndef.records[0].iri)


class TestNfcpyReadsType4:
    def test_phone_card(self, emulator: TagEmulator) -> None:
        """nfcpy activates the phone card as a Type4ATag with its random UID and reads the NDEF."""
        records = [ndef.UriRecord("https://loyalty.example/c?n=6001234567")]
        card = PhoneCard(records)
        t4 = with_tag(emulator, card, lambda t: t)
        assert isinstance(t4, nfc.tag.tt4.Type4ATag)
        assert t4.identifier == card.uid and card.uid[0] == 0x08

    def test_phone_card_ndef(self, emulator: TagEmulator) -> None:
        """nfcpy reads the phone card's NDEF records and sees it read-only."""
        records = [ndef.UriRecord("https://loyalty.example/c?n=6001234567"),
                   ndef.TextRecord("t" * 400)]
        got = with_tag(emulator, PhoneCard(records),
                       lambda t: (t.ndef.records, t.ndef.is_writeable))
        assert got == (records, False)

    def test_provisioning_write(self, emulator: TagEmulator) -> None:
        """nfcpy writes an NDEF message to a writable Type 4 tag and a new tap reads it back."""
        tag = Type4Tag(H("04B0B1B2B3B4B5"), b"", capacity=512)
        records = [ndef.TextRecord("provisioned " * 20)]

        def write(t: Any) -> None:
            t.ndef.records = records

        with_tag(emulator, tag, write)
        assert with_tag(emulator, tag, lambda t: t.ndef.records) == records

    def test_ntag424_two_reads_advance_and_verify(self, emulator: TagEmulator) -> None:
        """Two taps of the NTAG 424 DNA give advancing counters that verify; a replay fails."""
        tag = Ntag424Dna(BASE, META, FILE, uid=H("04C0FFEE123480"), counter=9,
                         file_data=sun.pack_file_data({"sku": "4006381333931"}))
        first = with_tag(emulator, tag, sun_iri)
        second = with_tag(emulator, tag, sun_iri)
        store = sun.MemoryCounterStore()
        a = sun.accept_sun_uri(first, KEYS, store)
        b = sun.accept_sun_uri(second, KEYS, store)
        assert a.verified and b.verified and (a.counter, b.counter) == (10, 11)
        assert a.uid == b.uid == "04C0FFEE123480"
        assert b.product == {"sku": "4006381333931"}
        replay = sun.accept_sun_uri(first, KEYS, store)
        assert replay.kind == "refused" and replay.code == "replayed"


class TestThroughReader:
    def test_phone_member_card_through_reader(self, emulator: TagEmulator) -> None:
        """The daemon's Reader identifies a phone emulating a signed member card."""
        uid = H("08C1C2C3")
        card = PhoneCard(member_card_ndef("M-1001", uid, DEMO_ISSUER), uid=uid)
        events: queue.Queue[TapEvent] = queue.Queue()
        stop = threading.Event()
        reader = Reader(emulator.path, trust=demo_trust(), debounce_s=0.0)
        thread = threading.Thread(target=reader.run, args=(events.put, stop))
        thread.start()
        try:
            emulator.present(card)
            event = events.get(timeout=10)
        finally:
            emulator.remove()
            stop.set()
            thread.join(timeout=10)
        assert (event.kind, event.card_id, event.verified) == ("member", "M-1001", True)
        assert (event.uid, event.tag_type) == ("08C1C2C3", "Type4Tag")
