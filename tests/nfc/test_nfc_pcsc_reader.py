"""The Reader on a pcsc: path: a real pcscd with the vpcd virtual reader, cards classified."""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pos_loyalty.nfc.cardformat import member_card_ndef
from pos_loyalty.nfc.demo_keys import DEMO_ISSUER, demo_trust
from pos_loyalty.nfc.events import TapEvent
from pos_loyalty.nfc.reader import Reader
from pos_loyalty.nfc.sim.vcard import (
    CARD_NAME_MIFARE_CLASSIC_1K,
    StorageCard,
    VirtualPcscStack,
    VpcdCardEmulator,
    ntag_memory,
)

sys.path.insert(0, str(Path(__file__).parents[1] / "crypto"))
import pcsc_env  # the pcscd + vpcd harness shared with the PC/SC backend tests

UID = bytes.fromhex("04E1E2E3E4E5E6")


@pytest.fixture(scope="module")
def pcscd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VirtualPcscStack]:
    with pcsc_env.running_stack(Path(tmp_path_factory.mktemp("pcscd"))) as stack:
        yield stack


class PcscSession:
    def __init__(self, env: VirtualPcscStack) -> None:
        self.events: queue.Queue[TapEvent] = queue.Queue()
        self.reader = Reader(f"pcsc:{env.reader}", trust=demo_trust(), debounce_s=0.0)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.reader.run, args=(self.events.put, self.stop))
        self.card = VpcdCardEmulator(env.port)
        self.thread.start()
        # a card put on the vpcd reader before the PC/SC loop watches it can go unseen
        time.sleep(0.5)

    def tap(self, card: StorageCard) -> TapEvent:
        self.card.insert(card)
        try:
            return self.events.get(timeout=10)
        finally:
            self.card.remove()

    def close(self) -> None:
        self.card.close()
        self.stop.set()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


@pytest.fixture
def session(pcscd: VirtualPcscStack) -> Iterator[PcscSession]:
    s = PcscSession(pcscd)
    yield s
    s.close()


class TestReaderOverPcsc:
    def test_member_card_verified(self, session: PcscSession) -> None:
        """A signed NTAG213 member card read through pcscd is a verified member TapEvent."""
        card = StorageCard(UID, ntag_memory(UID, member_card_ndef("PCSC-1", UID, DEMO_ISSUER)))
        event = session.tap(card)
        assert (event.kind, event.card_id, event.verified) == ("member", "PCSC-1", True)
        assert event.tag_type == "NTAG213" and event.uid == UID.hex().upper()
        assert event.read_ms > 0

    def test_copied_record_refused(self, session: PcscSession) -> None:
        """The card record on a tag with another UID is refused through PC/SC too."""
        other = bytes.fromhex("04E1E2E3E4E5E7")
        card = StorageCard(other, ntag_memory(other, member_card_ndef("PCSC-2", UID,
                                                                      DEMO_ISSUER)))
        event = session.tap(card)
        assert event.kind == "refused" and "copied" in (event.reason or "")

    def test_classic_is_legacy(self, session: PcscSession) -> None:
        """A MIFARE Classic seen by pcscd is a UID-only legacy card, refused by default."""
        card = StorageCard(bytes.fromhex("A1B2C3D4"), bytearray(64), CARD_NAME_MIFARE_CLASSIC_1K)
        event = session.tap(card)
        assert event.kind == "refused" and "legacy" in (event.reason or "")

    def test_heartbeat_while_idle(self, session: PcscSession) -> None:
        """With no card the PC/SC loop still shows signs of life for the watchdog."""
        time.sleep(1.0)
        assert session.reader.heartbeat_age() < 1.0
