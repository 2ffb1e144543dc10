"""NTAG21x emulation as nfcpy's real NTAG21x classes use it: read, write, lock, password."""

from __future__ import annotations

from typing import Any

import ndef
import nfc.tag.tt2
import pytest
from nfc_testkit import nfcpy_activate

from pos_loyalty.nfc.sim import cards
from pos_loyalty.nfc.sim.emulator import TagEmulator
from pos_loyalty.nfc.sim.ntag import MODELS, Ntag21x


def _text(s: str) -> bytes:
    return b"".join(ndef.message_encoder([ndef.TextRecord(s)]))


class TestMemoryLayout:
    @pytest.mark.parametrize("model", sorted(MODELS))
    def test_capability_container_and_uid_pages(self, model: str) -> None:
        """Pages 0-3 hold UID, BCC0/BCC1, internal byte and the NDEF capability container."""
        uid = bytes.fromhex("04A1B2C3D4E5F6")
        tag = Ntag21x(model, uid=uid)
        assert tag.page(0) == bytes([0x04, 0xA1, 0xB2, 0x88 ^ 0x04 ^ 0xA1 ^ 0xB2])
        assert tag.page(1) == uid[3:]
        assert tag.page(2)[0] == 0xD4 ^ 0xE5 ^ 0xF6 ^ 0xC3
        assert tag.page(3) == bytes([0xE1, 0x10, MODELS[model].cc_size, 0x00])

    def test_ndef_too_large_rejected(self) -> None:
        """An NDEF message beyond the user memory is refused at construction."""
        with pytest.raises(ValueError, match="does not fit"):
            Ntag21x("NTAG213", ndef=b"\x00" * 200)


class TestCommandsThroughNfcpy:
    def test_get_version_and_signature(self, emulator: TagEmulator) -> None:
        """READ_SIG returns the tag's 32-byte signature through nfcpy's signature attribute."""
        tag = Ntag21x("NTAG215")
        sig = nfcpy_activate(emulator, tag, lambda t: t.signature)
        assert sig == tag.signature and len(sig) == 32

    def test_fast_read_returns_page_range(self, emulator: TagEmulator) -> None:
        """FAST_READ 3A 00 03 answers pages 0 to 3 in one frame."""
        tag = Ntag21x("NTAG213")
        data = nfcpy_activate(emulator, tag, lambda t: bytes(t.transceive(b"\x3a\x00\x03")))
        assert data == tag.memory[0:16]

    def test_read_past_end_naks(self, emulator: TagEmulator) -> None:
        """READ of a page beyond memory is a NAK, which nfcpy reports as an invalid page."""
        tag = Ntag21x("NTAG213")

        def work(t: Any) -> None:
            with pytest.raises(nfc.tag.tt2.Type2TagCommandError):
                t.read(45)

        nfcpy_activate(emulator, tag, work)

    def test_read_rolls_over_and_hides_password(self, emulator: TagEmulator) -> None:
        """READ 43 wraps to pages 0-1 and returns PWD as zeros."""
        tag = Ntag21x("NTAG213", password=b"\x11\x22\x33\x44")
        data = nfcpy_activate(emulator, tag, lambda t: bytes(t.read(43)))
        assert data[0:4] == b"\x00\x00\x00\x00"
        assert data[8:16] == tag.memory[0:8]

    def test_write_ndef_and_read_back(self, emulator: TagEmulator) -> None:
        """nfcpy writes an NDEF message into a blank NTAG213 and it reads back the same."""
        tag = cards.blank_tag()
        message = _text("written by nfcpy")

        def write(t: Any) -> bool:
            t.ndef.octets = message
            return bool(t.ndef.is_writeable)

        assert nfcpy_activate(emulator, tag, write)
        assert nfcpy_activate(emulator, tag, lambda t: bytes(t.ndef.octets)) == message

    def test_protect_sets_lock_bits_and_blocks_writes(self, emulator: TagEmulator) -> None:
        """nfcpy's protect() sets static, dynamic and CFGLCK lock bits; writes then fail."""
        tag = cards.member_card("LOCK-1")
        assert nfcpy_activate(emulator, tag, lambda t: t.protect())
        assert tag.static_lock == b"\xff\xff"
        assert tag.dynamic_lock == b"\xff\xff\xff"
        assert tag.config_locked
        assert tag.page(3)[3] == 0x0F  # CC: read-only NDEF

        def try_write(t: Any) -> tuple[bool, bool]:
            writeable = bool(t.ndef.is_writeable)
            try:
                t.write(4, b"\x00\x00\x00\x00")
            except nfc.tag.tt2.Type2TagCommandError:
                return writeable, False
            return writeable, True

        assert nfcpy_activate(emulator, tag, try_write) == (False, False)
        assert tag.page(4) != b"\x00\x00\x00\x00"

    def test_lock_bits_never_clear(self) -> None:
        """Writing zeros over set lock bits leaves them set."""
        tag = Ntag21x("NTAG213")
        tag.reset()
        assert tag.handle(b"\xa2\x02\x00\x00\x30\x00") == b"\x0a"
        assert tag.handle(b"\xa2\x02\x00\x00\x00\x00") == b"\x0a"
        assert tag.static_lock == b"\x30\x00"
        assert tag.handle(b"\xa2\x04\x01\x02\x03\x04") == b"\x00"  # page 4 locked: NAK

    def test_factory_password_authenticates(self, emulator: TagEmulator) -> None:
        """PWD_AUTH with the factory password returns PACK, nfcpy reports success."""
        tag = Ntag21x("NTAG213")
        assert nfcpy_activate(emulator, tag, lambda t: t.authenticate(b""))

    def test_wrong_password_fails(self, emulator: TagEmulator) -> None:
        """PWD_AUTH with a wrong password is refused."""
        tag = Ntag21x("NTAG213", password=b"\x01\x02\x03\x04", pack=b"\xaa\xbb")
        wrong = b"\x09\x09\x09\x09\xaa\xbb"
        assert nfcpy_activate(emulator, tag, lambda t: t.authenticate(wrong)) is False
        right = b"\x01\x02\x03\x04\xaa\xbb"
        assert nfcpy_activate(emulator, tag, lambda t: t.authenticate(right)) is True

    def test_password_protection_blocks_unauthenticated_write(self) -> None:
        """With AUTH0 at page 4, writes need PWD_AUTH first."""
        tag = Ntag21x("NTAG213")
        tag.reset()
        cfg = tag.model.cfg_page
        assert tag.handle(bytes([0xA2, cfg, 0x04, 0x00, 0x00, 0x04])) == b"\x0a"  # AUTH0=4
        assert tag.handle(b"\xa2\x05\x01\x02\x03\x04") == b"\x00"
        tag.reset()
        assert tag.handle(b"\x1b\xff\xff\xff\xff") == b"\x00\x00"
        assert tag.handle(b"\xa2\x05\x01\x02\x03\x04") == b"\x0a"

    def test_nak_mutes_until_reset(self) -> None:
        """After a NAK the tag is silent until it is reactivated."""
        tag = Ntag21x("NTAG213")
        tag.reset()
        assert tag.handle(b"\x30\xff") == b"\x00"
        assert tag.handle(b"\x30\x00") is None
        tag.reset()
        assert tag.handle(b"\x30\x00") is not None

    def test_ultralight_c_probe_gets_silence(self) -> None:
        """1A 00 is not answered, so nfcpy does not take the tag for an Ultralight C."""
        tag = Ntag21x("NTAG213")
        tag.reset()
        assert tag.handle(b"\x1a\x00") is None
