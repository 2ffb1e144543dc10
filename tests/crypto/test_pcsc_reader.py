"""The PC/SC backend: card reading over APDUs, and for real through pcscd and vpcd."""

from __future__ import annotations

import dataclasses
import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import ndef
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pcsc_env import running_stack

from pos_loyalty.errors import ReaderError
from pos_loyalty.nfc import pcsc, sun
from pos_loyalty.nfc.cardformat import member_card_ndef
from pos_loyalty.nfc.demo_keys import DEMO_ISSUER, demo_trust
from pos_loyalty.nfc.events import TapEvent
from pos_loyalty.nfc.reader import Reader
from pos_loyalty.nfc.sim.type4 import Ntag424Dna, PhoneCard, Type4Tag
from pos_loyalty.nfc.sim.vcard import (
    CARD_NAME_MIFARE_CLASSIC_1K,
    IsoCard,
    StorageCard,
    VirtualPcscStack,
    VpcdCardEmulator,
    iso_card_atr,
    ntag_memory,
    storage_card_atr,
)
from pos_loyalty.nfc.source import TagRead
from pos_loyalty.nfc.sunuri import sun_uri_verifier

H = bytes.fromhex
NTAG_UID = H("04C1C2C3C4C5C6")
META = H("00112233445566778899AABBCCDDEEFF")
FILE = H("FFEEDDCCBBAA99887766554433221100")
KEYS = [sun.SunKeyEntry("https://p.example/t", "product", META, FILE)]


def message(text: str = "https://loyalty.example/c?n=6001234567") -> bytes:
    return b"".join(ndef.message_encoder([ndef.UriRecord(text)]))


def ntag(msg: bytes | None = None, product: str = "NTAG213") -> StorageCard:
    return StorageCard(NTAG_UID, ntag_memory(NTAG_UID, msg if msg is not None else message(),
                                             product))


def ntag424() -> Ntag424Dna:
    return Ntag424Dna("https://p.example/t", META, FILE, uid=H("04D1D2D3D4D5D6"),
                      file_data=sun.pack_file_data({"sku": "4006381333931"}))


class TestPure:
    def test_storage_atr(self) -> None:
        """The ACR122U storage-card ATR for an Ultralight/NTAG is recognised with its name."""
        atr = storage_card_atr(0x0003)
        assert atr == H("3B8F8001804F0CA0000003060300030000000068")
        assert pcsc.parse_atr(atr) == pcsc.AtrInfo(True, 0x0003, atr[4:-1])

    def test_iso_atr(self) -> None:
        """An ISO 14443-4 ATR is not a storage card."""
        assert not pcsc.parse_atr(iso_card_atr(b"\x80")).storage

    @pytest.mark.parametrize(("path", "selector"), [
        ("pcsc", 0), ("pcsc:", 0), ("pcsc:1", 1), ("pcsc:ACS ACR1252", "ACS ACR1252")])
    def test_device_paths(self, path: str, selector: int | str) -> None:
        """Device paths select a reader by index or by name."""
        assert pcsc.parse_device_path(path) == selector

    def test_device_path_wrong_scheme(self) -> None:
        """A non-PC/SC path is refused with a ReaderError naming the right form."""
        with pytest.raises(ReaderError, match="pcsc:0"):
            pcsc.parse_device_path("usb:054c:06c1")

    def test_choose_reader_by_name(self) -> None:
        """A name selector picks the first reader whose name contains it, case-insensitively."""
        names = ["Generic CCID 00 00", "ACS ACR1252 1S CL Reader [ACR1252U] 00 01"]
        assert pcsc.choose_reader(names, "acs acr1252") == names[1]
        assert pcsc.choose_reader(names, 5) is None

    def test_choose_contactless_slot(self) -> None:
        """Of a dual-interface ACR1252U the PICC slot is chosen, even when SAM is listed first."""
        names = ["ACS ACR1252 Dual Reader [ACR1252 Dual Reader SAM] 00 00",
                 "ACS ACR1252 Dual Reader [ACR1252 Dual Reader PICC] 00 01"]
        assert pcsc.choose_reader(names, "ACS ACR1252") == names[1]
        assert pcsc.choose_reader(names, 0) == names[1]

    def test_tlv_walk(self) -> None:
        """Lock-control TLVs are skipped; a short buffer asks for more; terminator ends."""
        assert pcsc.find_ndef_tlv(H("0103A00C340303D00000FE")) == (H("D00000"), None)
        assert pcsc.find_ndef_tlv(H("0305D000")) == (None, 7)
        assert pcsc.find_ndef_tlv(H("00FE03")) == (None, None)
        assert pcsc.find_ndef_tlv(H("03FF0100")) == (None, 260)

    @given(st.binary(max_size=80))
    def test_tlv_fuzz(self, data: bytes) -> None:
        """Any memory contents give a message inside the data, a need, or nothing."""
        found, needed = pcsc.find_ndef_tlv(data)
        assert found is None or found in data
        assert needed is None or needed > len(data) or found is None

    @given(atr=st.binary(max_size=24), replies=st.lists(st.binary(max_size=40), max_size=40))
    def test_read_card_on_junk_never_raises(self, atr: bytes, replies: list[bytes]) -> None:
        """A card answering garbage gives a CardRead with an error, never an exception."""
        it = iter(replies)
        read = pcsc.read_card(atr, lambda apdu: next(it, b"\x6a\x82"))
        assert read.ndef is None or read.error is None


class TestReadCardOverApdus:
    def test_ntag213(self) -> None:
        """An NTAG213 storage card reads as NTAG213 with its UID and NDEF message."""
        card = ntag()
        read = pcsc.read_card(card.atr, card.apdu)
        assert (read.uid, read.tag_type, read.ndef, read.error) == (
            NTAG_UID, "NTAG213", message(), None)

    def test_ntag216_long_message_page_by_page(self) -> None:
        """A 600-byte message on an NTAG216 (3-byte TLV length) reads with 4-byte reads."""
        msg = b"".join(ndef.message_encoder([ndef.TextRecord("y" * 600)]))
        card = ntag(msg, "NTAG216")
        read = pcsc.read_card(card.atr, card.apdu, read_len=4)
        assert read.tag_type == "NTAG216" and read.ndef == msg

    def test_blank_ntag(self) -> None:
        """An NTAG without a capability container is reported blank, with no NDEF."""
        card = ntag()
        card.memory[12:16] = bytes(4)
        read = pcsc.read_card(card.atr, card.apdu)
        assert read.ndef is None and "capability container" in (read.error or "")

    def test_mifare_classic_uid_only(self) -> None:
        """A MIFARE Classic is a UID-only card."""
        card = StorageCard(H("A1B2C3D4"), bytearray(64), CARD_NAME_MIFARE_CLASSIC_1K)
        read = pcsc.read_card(card.atr, card.apdu)
        assert (read.uid, read.tag_type, read.ndef) == (H("A1B2C3D4"), "MIFARE Classic 1K", None)

    def test_phone_card(self) -> None:
        """A phone's card emulation reads as a Type 4 tag with its NDEF."""
        card = IsoCard(PhoneCard(message(), uid=H("08A1A2A3")))
        card.power_on()
        read = pcsc.read_card(card.atr, card.apdu)
        assert (read.uid, read.tag_type, read.ndef) == (H("08A1A2A3"), "Type4Tag", message())

    def test_long_type4_message(self) -> None:
        """A 900-byte Type 4 NDEF file is read in several READ BINARYs."""
        msg = b"".join(ndef.message_encoder([ndef.TextRecord("z" * 900)]))
        card = IsoCard(Type4Tag(H("04E1E2E3E4E5E6"), msg, capacity=1024))
        card.power_on()
        assert pcsc.read_card(card.atr, card.apdu).ndef == msg

    def test_storage_card_rejects_bad_commands(self) -> None:
        """Reads past the end, bad lengths and writes to the UID pages are refused."""
        card = ntag()
        assert card.apdu(H("FFB0002D04")) == H("6B00")
        assert card.apdu(H("FFB0000005")) == H("6700")
        assert card.apdu(H("FFD600000400000000")) == H("6981")
        assert card.apdu(H("FFD60004040102030490")) == H("6700")


@pytest.fixture(scope="module")
def pcsc_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VirtualPcscStack]:
    """pcscd with the vpcd virtual reader (ours, or a system one that has it)."""
    with running_stack(Path(tmp_path_factory.mktemp("pcscd"))) as stack:
        yield stack


class Collect:
    """A TagSink that keeps every raw read (no classification, no debounce)."""

    def __init__(self) -> None:
        self.reads: queue.Queue[TagRead] = queue.Queue()
        self.states: list[bool] = []

    def on_read(self, read: TagRead) -> bool:
        self.reads.put(read)
        return True

    def on_present(self) -> None:
        pass

    def beat(self) -> None:
        pass

    def on_state(self, up: bool) -> None:
        self.states.append(up)


class Session:
    """The PC/SC tag source running in a thread, a virtual card on the vpcd reader."""

    def __init__(self, env: VirtualPcscStack) -> None:
        self.sink = Collect()
        self.reads = self.sink.reads
        self.states = self.sink.states
        self.stop = threading.Event()
        self.source = pcsc.PcscSource(f"pcsc:{env.reader}")
        self.thread = threading.Thread(target=self.source.run, args=(self.sink, self.stop))
        self.card = VpcdCardEmulator(env.port)

    def __enter__(self) -> Session:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.card.close()
        self.stop.set()
        self.thread.join(timeout=10)

    def tap(self, card: StorageCard | IsoCard, timeout: float = 10.0) -> TagRead:
        self.card.insert(card)
        try:
            return self.reads.get(timeout=timeout)
        finally:
            self.card.remove()


class Taps:
    """The reader pipeline (classify, debounce) on the PC/SC source; TapEvents in order."""

    def __init__(self, env: VirtualPcscStack, debounce_s: float = 0.0) -> None:
        self.events: queue.Queue[TapEvent] = queue.Queue()
        self.stop = threading.Event()
        self.reader = Reader(f"pcsc:{env.reader}", trust=demo_trust(), debounce_s=debounce_s)
        self.thread = threading.Thread(target=self.reader.run, args=(self.events.put, self.stop))
        self.card = VpcdCardEmulator(env.port)

    def __enter__(self) -> Taps:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.card.close()
        self.stop.set()
        self.thread.join(timeout=10)

    def tap(self, card: StorageCard | IsoCard, timeout: float = 10.0) -> TapEvent:
        self.card.insert(card)
        try:
            return self.events.get(timeout=timeout)
        finally:
            self.card.remove()


class TestThroughPcscd:
    def test_lists_the_virtual_reader(self, pcsc_setup: VirtualPcscStack) -> None:
        """pcscd lists the vpcd reader under its configured name."""
        assert any(pcsc_setup.reader in name for name in pcsc.list_readers())

    def test_ntag_read_through_pcscd(self, pcsc_setup: VirtualPcscStack) -> None:
        """An NTAG213 on the virtual reader is read with its UID and NDEF through pcscd."""
        with Session(pcsc_setup) as s:
            read = s.tap(ntag())
        assert (read.uid, read.tag_type, read.ndef) == (NTAG_UID, "NTAG213", message())
        assert read.done > read.started > 0 and read.failed is None

    def test_phone_card_through_pcscd(self, pcsc_setup: VirtualPcscStack) -> None:
        """A phone's Type 4 card emulation is read through pcscd with T=1 APDUs."""
        with Session(pcsc_setup) as s:
            read = s.tap(IsoCard(PhoneCard(message(), uid=H("08B1B2B3"))))
        assert (read.uid, read.tag_type, read.ndef) == (H("08B1B2B3"), "Type4Tag", message())

    def test_ntag424_taps_advance_and_replay_refused(self, pcsc_setup: VirtualPcscStack) -> None:
        """Two taps of an NTAG 424 DNA give advancing verified counters; a replay is refused."""
        tag = IsoCard(ntag424())
        store = sun.MemoryCounterStore()
        uris = []
        with Session(pcsc_setup) as s:
            for _ in range(2):
                read = s.tap(tag)
                assert read.ndef is not None
                uris.append(next(ndef.message_decoder(read.ndef)).iri)
        first, second = (sun.accept_sun_uri(u, KEYS, store) for u in uris)
        assert first.verified and second.verified
        assert first.product == {"sku": "4006381333931"}
        assert second.counter == (first.counter or 0) + 1
        replay = sun.accept_sun_uri(uris[0], KEYS, store)
        assert replay.kind == "refused" and replay.code == "replayed"

    def test_held_card_is_one_read(self, pcsc_setup: VirtualPcscStack) -> None:
        """A card left on the reader is read once, not once per poll."""
        with Session(pcsc_setup) as s:
            s.card.insert(ntag())
            assert s.reads.get(timeout=10).uid == NTAG_UID
            with pytest.raises(queue.Empty):
                s.reads.get(timeout=1.5)

    def test_debounce_same_uid(self, pcsc_setup: VirtualPcscStack) -> None:
        """The same card presented again within the debounce time is not a second tap."""
        with Taps(pcsc_setup, debounce_s=60.0) as s:
            assert s.tap(ntag()).uid == NTAG_UID.hex().upper()
            s.card.insert(ntag())
            with pytest.raises(queue.Empty):
                s.events.get(timeout=2.0)
            s.card.remove()
            other = StorageCard(H("04F1F2F3F4F5F6"), ntag_memory(H("04F1F2F3F4F5F6"), message()))
            assert s.tap(other).uid == "04F1F2F3F4F5F6"

    def test_debounce_counts_from_removal(self, pcsc_setup: VirtualPcscStack) -> None:
        """A card held longer than the debounce time and put back at once is still one tap:
        the debounce runs from when the card was last seen, not from when it was read."""
        with Taps(pcsc_setup, debounce_s=3.0) as s:
            s.card.insert(ntag())
            assert s.events.get(timeout=10).uid == NTAG_UID.hex().upper()
            s.stop.wait(3.5)
            s.card.remove()
            s.card.insert(ntag())
            with pytest.raises(queue.Empty):
                s.events.get(timeout=1.5)

    def test_reading_resumes_after_pcscd_restart(self, pcsc_setup: VirtualPcscStack) -> None:
        """pcscd going away and coming back (reader unplugged and replugged) is survived."""
        if not pcsc_setup.owned:
            pytest.skip("uses the system pcscd, which the tests do not restart")
        with Session(pcsc_setup) as s:
            assert s.tap(ntag()).uid == NTAG_UID
            opened = s.source.opened
            pcsc_setup.restart()
            assert s.tap(ntag(), timeout=20).uid == NTAG_UID
            assert s.source.opened > opened
            assert s.states[:3] == [True, False, True]


class TestTapEvents:
    """The PC/SC reader reports the same TapEvents as the nfcpy reader, through classify()."""

    def run_taps(self, env: VirtualPcscStack, cards: list[StorageCard | IsoCard],
                 accept_legacy_uid: bool = False) -> list[TapEvent]:
        events: queue.Queue[TapEvent] = queue.Queue()
        stop = threading.Event()
        reader = Reader(f"pcsc:{env.reader}",
                        trust=demo_trust(accept_legacy_uid=accept_legacy_uid), debounce_s=0.0)
        thread = threading.Thread(target=reader.run, args=(events.put, stop))
        thread.start()
        out = []
        try:
            with VpcdCardEmulator(env.port) as slot:
                for card in cards:
                    slot.insert(card)
                    out.append(events.get(timeout=10))
                    slot.remove()
        finally:
            stop.set()
            thread.join(timeout=10)
        return out

    def test_member_card_on_ntag(self, pcsc_setup: VirtualPcscStack) -> None:
        """A signed member card on an NTAG213 is a verified member, as with nfcpy."""
        card = ntag(member_card_ndef("M-2002", NTAG_UID, DEMO_ISSUER))
        (event,) = self.run_taps(pcsc_setup, [card])
        assert (event.kind, event.card_id, event.verified) == ("member", "M-2002", True)
        assert (event.uid, event.tag_type) == (NTAG_UID.hex().upper(), "NTAG213")
        assert event.read_ms > 0

    def test_copied_member_card_refused(self, pcsc_setup: VirtualPcscStack) -> None:
        """A member record copied onto another NTAG is refused as forged or copied."""
        other = H("04E0E1E2E3E4E5")
        card = StorageCard(other, ntag_memory(other, member_card_ndef("M-2002", NTAG_UID,
                                                                      DEMO_ISSUER)))
        (event,) = self.run_taps(pcsc_setup, [card])
        assert event.kind == "refused" and "copied" in (event.reason or "")

    def test_legacy_card_only_when_enabled(self, pcsc_setup: VirtualPcscStack) -> None:
        """A MIFARE Classic is refused by default and an unverified member when enabled."""
        classic = StorageCard(H("A1B2C3D4"), bytearray(64), CARD_NAME_MIFARE_CLASSIC_1K)
        (refused,) = self.run_taps(pcsc_setup, [classic])
        (member,) = self.run_taps(pcsc_setup, [classic], accept_legacy_uid=True)
        assert refused.kind == "refused" and "legacy" in (refused.reason or "")
        assert (member.kind, member.uid, member.card_id, member.verified) == (
            "member", "A1B2C3D4", None, False)

    def test_ntag424_product_and_cloned_replay(self, pcsc_setup: VirtualPcscStack) -> None:
        """An NTAG 424 DNA tap is a verified product; its URL copied onto a static tag is
        refused as copied (other UID) or replayed (same UID)."""
        tag = ntag424()
        events: queue.Queue[TapEvent] = queue.Queue()
        stop = threading.Event()
        trust = dataclasses.replace(
            demo_trust(), uri_verifiers=(sun_uri_verifier(KEYS, sun.MemoryCounterStore()),))
        reader = Reader(f"pcsc:{pcsc_setup.reader}", trust=trust, debounce_s=0.0)
        thread = threading.Thread(target=reader.run, args=(events.put, stop))
        thread.start()
        try:
            with VpcdCardEmulator(pcsc_setup.port) as slot:
                slot.insert(IsoCard(tag))
                genuine = events.get(timeout=10)
                slot.remove()
                captured = next(ndef.message_decoder(tag.ndef_data)).iri
                clone_msg = b"".join(ndef.message_encoder([ndef.UriRecord(captured)]))
                for uid in (H("04ABABABABABAB"), tag.uid):
                    slot.insert(IsoCard(Type4Tag(uid, clone_msg)))
                    yield_event = events.get(timeout=10)
                    slot.remove()
                    assert yield_event.kind == "refused"
                    assert ("copied" if uid != tag.uid else "replayed") in (
                        yield_event.reason or "")
        finally:
            stop.set()
            thread.join(timeout=10)
        assert (genuine.kind, genuine.verified) == ("product", True)
        assert genuine.product is not None and genuine.product["sku"] == "4006381333931"


class TestCardFuzz:
    @given(st.binary(max_size=40))
    def test_storage_card_any_apdu(self, apdu: bytes) -> None:
        """The virtual NTAG answers any command bytes with a status word, never raising."""
        reply = ntag().apdu(apdu)
        assert len(reply) >= 2

    @given(st.binary(max_size=300))
    def test_iso_card_any_apdu(self, apdu: bytes) -> None:
        """The virtual Type 4 card answers any command bytes with a status word."""
        card = IsoCard(PhoneCard(message(), uid=H("08010203")))
        card.power_on()
        assert len(card.apdu(apdu)) >= 2
