"""The tag emulator's ISO 14443-3 side: anticollision, select, halt, field off, pass-through."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from functools import reduce
from operator import xor

import nfc
import nfc.clf
import nfc.tag
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pos_loyalty.nfc.sim.emulator import TagEmulator, cascade_levels
from pos_loyalty.nfc.sim.legacy import UidOnlyCard


class RecordingTag:
    """A minimal EmulatedTag that records what it is sent and answers from a script."""

    def __init__(self, uid: bytes, sel_res: int = 0x00, sens_res: bytes = b"\x44\x00",
                 answers: dict[bytes, bytes] | None = None) -> None:
        self.uid = uid
        self.sel_res = sel_res
        self.sens_res = sens_res
        self.answers = answers or {}
        self.frames: list[bytes] = []
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1

    def handle(self, frame: bytes) -> bytes | None:
        self.frames.append(frame)
        return self.answers.get(frame)


class RawReader:
    """Speaks the udp driver's datagram format directly, to check single frames."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(0.3)
        self.addr = ("127.0.0.1", port)

    def send(self, hexframe: str) -> bytes | None:
        self.sock.sendto(b"106A " + hexframe.encode(), self.addr)
        try:
            data = self.sock.recv(1024)
        except TimeoutError:
            return None
        brty, hexdata = data.split()
        assert brty == b"106A"
        return bytes.fromhex(hexdata.decode())

    def raw(self, datagram: bytes) -> None:
        self.sock.sendto(datagram, self.addr)

    def drain(self) -> None:
        """Discard answers already sent back (to frames whose answer we ignore)."""
        self.sock.settimeout(0.02)
        try:
            while True:
                self.sock.recv(1024)
        except TimeoutError:
            pass
        finally:
            self.sock.settimeout(0.3)

    def select(self, uid: bytes) -> bytes | None:
        """REQA and select with the full UID; returns the final SAK."""
        assert self.send("26") is not None
        sak = None
        for cmd, level in zip(("93", "95", "97"), cascade_levels(uid), strict=False):
            sak = self.send(cmd + "70" + level.hex())
        return sak

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw(emulator: TagEmulator) -> Iterator[RawReader]:
    r = RawReader(emulator.port)
    yield r
    r.close()


class TestCascadeLevels:
    @pytest.mark.parametrize("size", [4, 7, 10])
    def test_bcc_is_xor_of_each_level(self, size: int) -> None:
        """Every anticollision answer ends in the XOR of its four bytes."""
        uid = bytes(range(0x11, 0x11 + size))
        levels = cascade_levels(uid)
        assert len(levels) == {4: 1, 7: 2, 10: 3}[size]
        for level in levels:
            assert level[4] == reduce(xor, level[:4])
        body = b"".join(level[:4] for level in levels).replace(b"\x88", b"")
        assert body == uid

    def test_bad_uid_size_rejected(self) -> None:
        """A 5-byte UID is not a valid NFCID1."""
        with pytest.raises(ValueError):
            cascade_levels(b"\x01\x02\x03\x04\x05")


class TestAnticollisionThroughNfcpy:
    @pytest.mark.parametrize("uid", [
        bytes.fromhex("1A2B3C4D"),
        bytes.fromhex("04A1B2C3D4E5F6"),
        bytes.fromhex("04A1B2C3D4E5F6071829"),
    ])
    def test_nfcpy_sense_resolves_uid(self, emulator: TagEmulator, uid: bytes) -> None:
        """nfcpy's own sense_tta resolves 4, 7 and 10 byte UIDs through the cascade levels."""
        emulator.present(RecordingTag(uid, sel_res=0x00))
        clf = nfc.ContactlessFrontend(emulator.path)
        try:
            target = clf.sense(nfc.clf.RemoteTarget("106A"))
        finally:
            clf.close()
        assert target is not None
        assert bytes(target.sdd_res) == uid
        assert bytes(target.sel_res) == b"\x00"
        assert bytes(target.sens_res) == b"\x44\x00"

    def test_type4_sak_and_rats_reach_the_tag(self, emulator: TagEmulator) -> None:
        """SAK 0x20 makes nfcpy try Type 4 activation, and its RATS goes to the tag first."""
        tag = RecordingTag(bytes.fromhex("08112233"), sel_res=0x20, sens_res=b"\x04\x00")
        emulator.present(tag)
        clf = nfc.ContactlessFrontend(emulator.path)
        try:
            target = clf.sense(nfc.clf.RemoteTarget("106A"))
            assert target is not None and bytes(target.sel_res) == b"\x20"
            assert nfc.tag.activate(clf, target) is None  # our tag never answers RATS
        finally:
            clf.close()
        assert tag.frames and tag.frames[0][0] == 0xE0

    def test_no_tag_means_silence(self, emulator: TagEmulator) -> None:
        """With nothing presented nfcpy's sense finds nothing."""
        clf = nfc.ContactlessFrontend(emulator.path)
        try:
            assert clf.sense(nfc.clf.RemoteTarget("106A")) is None
        finally:
            clf.close()
        assert emulator.frames_in >= 1

    def test_uid_only_card_selects_with_sak_08(self, emulator: TagEmulator) -> None:
        """The legacy card answers anticollision with a 4-byte UID and SAK 0x08."""
        card = UidOnlyCard(bytes.fromhex("3A4B5C6D"))
        emulator.present(card)
        clf = nfc.ContactlessFrontend(emulator.path)
        try:
            target = clf.sense(nfc.clf.RemoteTarget("106A"))
        finally:
            clf.close()
        assert target is not None
        assert bytes(target.sdd_res) == card.uid and bytes(target.sel_res) == b"\x08"


class TestFrameLevel:
    def test_anticollision_answers_and_bccs(self, emulator: TagEmulator, raw: RawReader) -> None:
        """REQA, SDD and SEL give ATQA, cascade-tagged UID parts with BCC, SAK 04 then SAK."""
        uid = bytes.fromhex("04A1B2C3D4E5F6")
        emulator.present(RecordingTag(uid))
        assert raw.send("26") == b"\x44\x00"
        cl1 = raw.send("9320")
        assert cl1 == bytes([0x88, 0x04, 0xA1, 0xB2, 0x88 ^ 0x04 ^ 0xA1 ^ 0xB2])
        assert raw.send("9370" + cl1.hex()) == b"\x04"
        cl2 = raw.send("9520")
        assert cl2 == uid[3:] + bytes([reduce(xor, uid[3:])])
        assert raw.send("9570" + cl2.hex()) == b"\x00"

    def test_wrong_select_is_ignored(self, emulator: TagEmulator, raw: RawReader) -> None:
        """A SEL for another UID or with a wrong BCC gets no answer."""
        emulator.present(RecordingTag(bytes.fromhex("1A2B3C4D")))
        assert raw.send("26") is not None
        assert raw.send("9370" + "1A2B3C4D00") is None
        assert raw.send("9370" + "1A2B3C4E" + format(0x1A ^ 0x2B ^ 0x3C ^ 0x4E, "02x")) is None

    def test_frames_after_select_go_to_tag(self, emulator: TagEmulator, raw: RawReader) -> None:
        """After select the tag answers; before select it hears nothing."""
        tag = RecordingTag(bytes.fromhex("1A2B3C4D"), answers={b"\x30\x04": b"\x01" * 16})
        emulator.present(tag)
        assert raw.send("3004") is None
        assert raw.select(tag.uid) == b"\x00"
        assert raw.send("3004") == b"\x01" * 16
        assert tag.frames == [b"\x30\x04"]

    def test_rfoff_resets_tag(self, emulator: TagEmulator, raw: RawReader) -> None:
        """RFOFF resets the tag and drops the selection."""
        tag = RecordingTag(bytes.fromhex("1A2B3C4D"), answers={b"\x30\x04": b"\x01" * 16})
        emulator.present(tag)
        raw.select(tag.uid)
        before = tag.resets
        raw.raw(b"RFOFF")
        assert raw.send("3004") is None
        assert tag.resets == before + 1

    def test_halt_then_only_wupa_wakes(self, emulator: TagEmulator, raw: RawReader) -> None:
        """After HLTA a REQA is ignored and a WUPA wakes the tag."""
        tag = RecordingTag(bytes.fromhex("1A2B3C4D"))
        emulator.present(tag)
        raw.select(tag.uid)
        assert raw.send("5000") is None
        assert raw.send("26") is None
        assert raw.send("52") == b"\x44\x00"

    def test_malformed_datagrams_ignored(self, emulator: TagEmulator, raw: RawReader) -> None:
        """Garbage datagrams are dropped and the emulator keeps answering."""
        emulator.present(RecordingTag(bytes.fromhex("1A2B3C4D")))
        for junk in (b"", b"106A", b"106A zz", b"106A 0", b"x y z", b"\xff" * 3000):
            raw.raw(junk)
        assert raw.send("26") == b"\x44\x00"

    def test_type_b_and_f_polls_unanswered(self, emulator: TagEmulator, raw: RawReader) -> None:
        """SENSB/SENSF requests on other bit rates are never answered."""
        emulator.present(RecordingTag(bytes.fromhex("1A2B3C4D")))
        raw.raw(b"106B 050010")
        raw.raw(b"212F 0600ffff0100")
        assert raw.send("26") == b"\x44\x00"

    def test_reqa_pending_when_tag_arrives_is_answered(
        self, emulator: TagEmulator, raw: RawReader,
    ) -> None:
        """A REQA that found an empty field is answered as soon as a tag is presented."""
        assert raw.send("26") is None
        emulator.present(RecordingTag(bytes.fromhex("1A2B3C4D")))
        data = raw.sock.recv(1024)
        assert data == b"106A 4400"


class TestDatagramFuzz:
    @settings(max_examples=150, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(datagram=st.one_of(
        st.binary(max_size=80),
        st.builds(lambda b, h: b + b" " + h.encode(),
                  st.sampled_from([b"106A", b"212F", b"106B", b"RFOFF", b"x"]),
                  st.text(alphabet="0123456789abcdefABCDEF ", max_size=40))))
    def test_any_datagram_keeps_emulator_answering(
        self, emulator: TagEmulator, raw: RawReader, datagram: bytes,
    ) -> None:
        """Whatever arrives, the emulator thread survives and still answers a REQA."""
        emulator.present(RecordingTag(bytes.fromhex("1A2B3C4D")))
        raw.raw(datagram)
        raw.raw(b"RFOFF")
        raw.drain()
        assert raw.send("52") == b"\x44\x00"


class TestLoopbackOnly:
    def test_refuses_non_loopback_host(self) -> None:
        """The emulator will not bind a routable address."""
        with pytest.raises(ValueError, match="loopback"):
            TagEmulator(host="0.0.0.0")

    def test_port_kept_across_taps(self, emulator: TagEmulator) -> None:
        """present/remove never re-bind the socket: the port stays the same."""
        port = emulator.port
        for _ in range(3):
            emulator.present(RecordingTag(bytes.fromhex("1A2B3C4D")))
            emulator.remove()
        assert emulator.port == port
