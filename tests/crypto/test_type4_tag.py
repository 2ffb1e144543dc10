"""Emulated Type 4 tags, driven frame by frame (ISO-DEP blocks and NDEF APDUs).

A second group runs nfcpy's own Type 4 tag class (RATS, its ISO-DEP initiator, NDEF discovery
and writing) against the emulated card through a frame pipe with no radio or sockets.
"""

from __future__ import annotations

from typing import Any

import ndef
import nfc.clf
import nfc.tag.tt4
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pos_loyalty.nfc import sun
from pos_loyalty.nfc.sim.type4 import (
    DEFAULT_424_UID,
    Ntag424Dna,
    PhoneCard,
    Type4Tag,
    parse_apdu,
)

H = bytes.fromhex
META = H("00112233445566778899AABBCCDDEEFF")
FILE = H("FFEEDDCCBBAA99887766554433221100")
SELECT_APP = H("00A4040007D276000085010100")
SELECT_CC = H("00A4000C02E103")
SELECT_NDEF = H("00A4000C02E104")


def card_message() -> list[Any]:
    return [ndef.UriRecord("https://loyalty.example/c?n=1234567890")]


def activate(tag: Any, rats: bytes = H("E080")) -> bytes:
    tag.reset()
    ats = tag.handle(rats)
    assert ats is not None
    return bytes(ats)


class Pcd:
    """The reader side of ISO-DEP, as small as the tests need: block numbers and chaining."""

    def __init__(self, tag: Any) -> None:
        self.tag = tag
        self.pni = 0

    def apdu(self, command: bytes) -> bytes:
        reply = self.tag.handle(bytes([0x02 | self.pni]) + command)
        assert reply is not None and reply[0] & 0x01 == self.pni
        self.pni ^= 1
        data = reply[1:]
        while reply[0] & 0x10:
            reply = self.tag.handle(bytes([0xA2 | self.pni]))
            assert reply is not None and reply[0] & 0x01 == self.pni
            self.pni ^= 1
            data += reply[1:]
        return bytes(data)


class TestIsoDep:
    def test_rats_answers_ats(self) -> None:
        """RATS gets an ATS whose FSCI and FWI nfcpy can read."""
        ats = activate(PhoneCard(card_message()))
        assert ats[0] == len(ats)
        assert ats[1] & 0x0F == 8 and ats[3] >> 4 <= 14

    def test_silent_before_rats(self) -> None:
        """Before RATS an I-block gets no answer."""
        tag = PhoneCard(card_message())
        tag.reset()
        assert tag.handle(bytes([0x02]) + SELECT_APP) is None

    def test_i_block_numbers_follow_reader(self) -> None:
        """Each I-block is answered with the block number the reader used."""
        tag = PhoneCard(card_message())
        activate(tag)
        assert tag.handle(bytes([0x02]) + SELECT_APP) == H("029000")
        assert tag.handle(bytes([0x03]) + SELECT_CC) == H("039000")

    def test_nak_same_number_retransmits(self) -> None:
        """R(NAK) with the card's current block number makes it resend its last block."""
        tag = PhoneCard(card_message())
        activate(tag)
        first = tag.handle(bytes([0x02]) + SELECT_APP)
        assert tag.handle(H("B2")) == first

    def test_nak_other_number_is_presence_check(self) -> None:
        """R(NAK) with the other block number (nfcpy's presence check) gets R(ACK)."""
        tag = PhoneCard(card_message())
        activate(tag)
        tag.handle(bytes([0x02]) + SELECT_APP)
        assert tag.handle(H("B3")) == H("A2")

    def test_response_chaining_to_small_fsd(self) -> None:
        """With FSD 16 a 17-byte response arrives in two chained I-blocks."""
        tag = PhoneCard(card_message())
        activate(tag, H("E000"))
        pcd = Pcd(tag)
        assert pcd.apdu(SELECT_APP) == H("9000")
        assert pcd.apdu(SELECT_CC) == H("9000")
        first = tag.handle(bytes([0x02 | pcd.pni]) + H("00B000000F"))
        assert first is not None and first[0] == 0x12 | pcd.pni and len(first) == 14
        pcd.pni ^= 1
        rest = tag.handle(bytes([0xA2 | pcd.pni]))
        assert rest is not None and rest[0] == 0x02 | pcd.pni
        cc = first[1:] + rest[1:]
        assert cc[-2:] == H("9000") and cc[:3] == H("000F20")

    def test_command_chaining(self) -> None:
        """A command sent in chained I-blocks is acknowledged, then executed whole."""
        tag = Type4Tag(H("04010203040506"), b"")
        activate(tag)
        pcd = Pcd(tag)
        pcd.apdu(SELECT_APP)
        pcd.apdu(SELECT_NDEF)
        update = H("00D6000006") + H("0004D1010055")[:6]
        ack = tag.handle(bytes([0x12 | pcd.pni]) + update[:5])
        assert ack == bytes([0xA2 | pcd.pni])
        pcd.pni ^= 1
        assert tag.handle(bytes([0x02 | pcd.pni]) + update[5:]) == bytes([0x02 | pcd.pni])\
            + H("9000")
        assert tag.ndef_data == H("D1010055")

    def test_overlong_chain_refused(self) -> None:
        """A chained command longer than the card accepts ends in 6700, not in memory growth."""
        tag = PhoneCard(card_message())
        activate(tag)
        pni = 0
        for _ in range(10):
            assert tag.handle(bytes([0x12 | pni]) + bytes(100)) == bytes([0xA2 | pni])
            pni ^= 1
        assert tag.handle(bytes([0x02 | pni]) + bytes(4)) == bytes([0x02 | pni]) + H("6700")

    def test_deselect_then_silent_until_reset(self) -> None:
        """S(DESELECT) is echoed; the card is then silent until the field is reset."""
        tag = PhoneCard(card_message())
        activate(tag)
        assert tag.handle(H("C2")) == H("C2")
        assert tag.handle(H("E080")) is None
        assert activate(tag) == tag.ats

    @settings(max_examples=300)
    @given(frames=st.lists(st.binary(max_size=300), max_size=12))
    def test_any_frames_never_raise(self, frames: list[bytes]) -> None:
        """Whatever frames arrive after RATS, the card answers within FSD or stays silent."""
        tag = Type4Tag(H("04010203040506"), b"\xd0\x00\x00")
        activate(tag)
        for frame in frames:
            reply = tag.handle(frame)
            assert reply is None or 1 <= len(reply) <= 256 - 2


class TestApdus:
    def setup_method(self) -> None:
        self.tag = PhoneCard(card_message(), uid=H("08112233"))
        activate(self.tag)
        self.pcd = Pcd(self.tag)

    def test_read_ndef(self) -> None:
        """SELECT app, CC, NDEF file and READ BINARY return the NDEF message."""
        assert self.pcd.apdu(SELECT_APP) == H("9000")
        assert self.pcd.apdu(SELECT_CC) == H("9000")
        cc = self.pcd.apdu(H("00B000000F"))
        assert cc[:3] == H("000F20") and cc[9:11] == H("E104")
        assert self.pcd.apdu(SELECT_NDEF) == H("9000")
        nlen = int.from_bytes(self.pcd.apdu(H("00B0000002"))[:2], "big")
        data = self.pcd.apdu(bytes([0, 0xB0, 0, 2, nlen]))[:-2]
        assert list(ndef.message_decoder(data)) == card_message()

    @pytest.mark.parametrize(("command", "status"), [
        (H("00CA000000"), "6D00"),          # unknown instruction
        (H("80A4040007D2760000850101"), "6E00"),   # wrong class
        (H("00B0000002"), "6986"),          # read with no file selected
        (H("00A4040007A000000003101000"), "6A82"),  # unknown application
        (H("00A4000C02E103"), "6A82"),      # file before the application
        (H("00A4040009D2760000850101"), "6700"),   # Lc larger than the data
        (H("00A4"), "6700"),                 # too short
    ])
    def test_errors(self, command: bytes, status: str) -> None:
        """Bad or out-of-order commands get the ISO 7816-4 status word for their fault."""
        assert self.pcd.apdu(command) == H(status)

    def test_read_past_end(self) -> None:
        """READ BINARY beyond the file returns 6B00."""
        self.pcd.apdu(SELECT_APP)
        self.pcd.apdu(SELECT_CC)
        assert self.pcd.apdu(H("00B0010002")) == H("6B00")

    def test_phone_card_is_read_only(self) -> None:
        """UPDATE BINARY on a phone card is refused with 6982 and changes nothing."""
        self.pcd.apdu(SELECT_APP)
        self.pcd.apdu(SELECT_NDEF)
        before = self.tag.ndef_data
        assert self.pcd.apdu(H("00D60000020000")) == H("6982")
        assert self.tag.ndef_data == before

    def test_update_beyond_capacity(self) -> None:
        """UPDATE BINARY past the end of the NDEF file is refused with 6A84."""
        tag = Type4Tag(H("04010203040506"), b"", capacity=64)
        activate(tag)
        pcd = Pcd(tag)
        pcd.apdu(SELECT_APP)
        pcd.apdu(SELECT_NDEF)
        assert pcd.apdu(H("00D6003E0400000000")) == H("6A84")

    def test_parse_apdu_cases(self) -> None:
        """The four short APDU cases split into data and Le; a bad Lc is rejected."""
        assert parse_apdu(H("00B00000")) == (0, 0xB0, 0, 0, b"", None)
        assert parse_apdu(H("00B0000000")) == (0, 0xB0, 0, 0, b"", 256)
        assert parse_apdu(H("00D6000002AABB")) == (0, 0xD6, 0, 0, H("AABB"), None)
        assert parse_apdu(H("00A4040002AABB10")) == (0, 0xA4, 4, 0, H("AABB"), 16)
        assert parse_apdu(H("00D6000003AABB")) is None


class TestFlavours:
    def test_phone_uid_is_random_08(self) -> None:
        """Phone card emulation uses a 4-byte UID starting 08, different per instance."""
        uids = {PhoneCard(card_message()).uid for _ in range(8)}
        assert all(len(u) == 4 and u[0] == 0x08 for u in uids)
        assert len(uids) > 1

    def test_ntag424_identity(self) -> None:
        """The NTAG 424 DNA flavour has a 7-byte NXP UID, SAK 20 and a double-size ATQA."""
        tag = Ntag424Dna("https://p.example/t", META, FILE)
        assert tag.uid == DEFAULT_424_UID and tag.uid[0] == 0x04
        assert tag.sel_res == 0x20 and tag.sens_res[0] & 0xC0 == 0x40

    def read_url(self, tag: Ntag424Dna) -> str:
        activate(tag)
        pcd = Pcd(tag)
        pcd.apdu(SELECT_APP)
        pcd.apdu(SELECT_NDEF)
        nlen = int.from_bytes(pcd.apdu(H("00B0000002"))[:2], "big")
        data = pcd.apdu(bytes([0, 0xB0, 0, 2, nlen]))[:-2]
        record = next(iter(ndef.message_decoder(data)))
        return str(record.iri)

    def test_ntag424_counter_advances_per_tap_and_verifies(self) -> None:
        """Each tap mirrors the next counter; every URL verifies with the tag's keys."""
        tag = Ntag424Dna("https://p.example/t", META, FILE, counter=41,
                         file_data=b"SKU=12345;LOT=07")
        seen = []
        for _ in range(3):
            url = self.read_url(tag)
            query = dict(p.split("=") for p in url.split("?")[1].split("&"))
            enc = H(query["enc"])
            res = sun.verify_sun(META, FILE, H(query["picc_data"]), H(query["cmac"]),
                                 enc=enc, mac_input=sun.url_mac_input(enc))
            assert res.valid, res.reason
            assert res.uid == tag.uid and res.file_data == b"SKU=12345;LOT=07"
            seen.append(res.counter)
        assert seen == [42, 43, 44]

    def test_ntag424_content_stable_within_tap(self) -> None:
        """Reads within one activation see the same URL; the counter moved once."""
        tag = Ntag424Dna("https://p.example/t", META, FILE)
        activate(tag)
        pcd = Pcd(tag)
        pcd.apdu(SELECT_APP)
        pcd.apdu(SELECT_NDEF)
        first = pcd.apdu(H("00B0000000"))
        second = pcd.apdu(H("00B0000000"))
        assert first == second and tag.counter == 1

    def test_ntag424_rejects_writes(self) -> None:
        """The SUN file is locked: UPDATE BINARY gets 6982."""
        tag = Ntag424Dna("https://p.example/t", META, FILE)
        activate(tag)
        pcd = Pcd(tag)
        pcd.apdu(SELECT_APP)
        pcd.apdu(SELECT_NDEF)
        assert pcd.apdu(H("00D60000020000")) == H("6982")

    def test_ntag424_bad_file_data(self) -> None:
        """File data that is not whole AES blocks is refused when the tag is made."""
        with pytest.raises(sun.SunFormatError):
            Ntag424Dna("https://p.example/t", META, FILE, file_data=b"odd")


class FramePipe:
    """Carries nfcpy's frames straight to the emulated card (no radio, no sockets)."""

    max_send_data_size = 290
    max_recv_data_size = 290

    def __init__(self, tag: Any) -> None:
        self.tag = tag

    def exchange(self, data: bytes, timeout: float) -> bytearray:
        reply = self.tag.handle(bytes(data))
        if reply is None:
            raise nfc.clf.TimeoutError("silent")
        return bytearray(reply)


def nfcpy_tag(tag: Any) -> nfc.tag.tt4.Type4ATag:
    tag.reset()
    target = nfc.clf.RemoteTarget("106A")
    target.sens_res, target.sel_res, target.sdd_res = tag.sens_res, bytes([tag.sel_res]), tag.uid
    return nfc.tag.tt4.activate(FramePipe(tag), target)


class TestNfcpyTagClass:
    def test_nfcpy_reads_phone_card(self) -> None:
        """nfcpy's Type4ATag activates the phone card and reads its NDEF records."""
        card = PhoneCard(card_message())
        t4 = nfcpy_tag(card)
        assert isinstance(t4, nfc.tag.tt4.Type4ATag)
        assert t4.identifier == card.uid
        assert t4.ndef is not None and t4.ndef.records == card_message()
        assert not t4.ndef.is_writeable
        assert t4.is_present

    def test_nfcpy_writes_long_message(self) -> None:
        """nfcpy writes a 600-byte NDEF message (chained UPDATE BINARYs) and reads it back."""
        blank = Type4Tag(H("04A0A1A2A3A4A5"), b"", capacity=1024)
        records = [ndef.TextRecord("x" * 600)]
        t4 = nfcpy_tag(blank)
        assert t4.ndef is not None and t4.ndef.is_writeable and t4.ndef.capacity == 1022
        t4.ndef.records = records
        assert blank.ndef_records() == records
        assert nfcpy_tag(blank).ndef.records == records

    def test_nfcpy_reads_ntag424_sun(self) -> None:
        """nfcpy reads the 424's SUN URL across chained 256-byte reads and it verifies."""
        tag = Ntag424Dna("https://p.example/t", META, FILE, file_data=b"P" * 32)
        urls = []
        for _ in range(2):
            t4 = nfcpy_tag(tag)
            assert t4.ndef is not None
            urls.append(t4.ndef.records[0].iri)
        assert urls[0] != urls[1]
        assert urls[1] == tag.last_url


class TestNfcpyProperties:
    @settings(max_examples=40, deadline=None)
    @given(size=st.integers(0, 1500), fsd_limit=st.sampled_from([16, 64, 128, 256, 290]),
           fsci=st.integers(0, 8))
    def test_any_message_any_frame_sizes(self, size: int, fsd_limit: int, fsci: int) -> None:
        """nfcpy reads back any message size, whatever frame sizes each side announces."""
        from pos_loyalty.nfc.sim import type4

        records = [ndef.TextRecord("m" * size)]
        data = b"".join(ndef.message_encoder(records))
        tag = Type4Tag(H("04C0C1C2C3C4C5"), data, capacity=2048,
                       ats=type4._ats(fsci=fsci, fwi=9))
        pipe = FramePipe(tag)
        pipe.max_recv_data_size = pipe.max_send_data_size = fsd_limit
        tag.reset()
        target = nfc.clf.RemoteTarget("106A")
        target.sens_res, target.sel_res, target.sdd_res = tag.sens_res, b"\x20", tag.uid
        t4 = nfc.tag.tt4.activate(pipe, target)
        assert t4.ndef is not None and t4.ndef.records == records
