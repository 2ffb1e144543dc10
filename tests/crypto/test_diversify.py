"""AN10922 AES-128 key diversification, against the vectors NXP publishes in AN10922.

AN10922 section 2.2.1: master key 00112233445566778899AABBCCDDEEFF, diversification input
M = UID 04782E21801D80 || AID 3042F5 || system identifier "NXP Abu" (4E585020416275),
CMAC subkeys K1 = FBC9F75C9413C041DFEE452D3F0706D1 and K2 = F793EEB928278083BFDC8A5A7E0E0D25,
diversified key A8DD63A3B89D54B37CA802473FDA9175.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.cmac import CMAC
from hypothesis import given
from hypothesis import strategies as st

from pos_loyalty.nfc.diversify import cmac_subkeys, diversify_aes128, tag_key

H = bytes.fromhex
MASTER = H("00112233445566778899AABBCCDDEEFF")
UID = H("04782E21801D80")
AID = H("3042F5")
SYSTEM_ID = b"NXP Abu"


def _cmac(key: bytes, data: bytes) -> bytes:
    c = CMAC(algorithms.AES(key))
    c.update(data)
    return c.finalize()


class TestAn10922Vectors:
    def test_subkeys(self) -> None:
        """K1 and K2 of the master key are the ones AN10922 lists."""
        assert cmac_subkeys(MASTER) == (H("FBC9F75C9413C041DFEE452D3F0706D1"),
                                        H("F793EEB928278083BFDC8A5A7E0E0D25"))

    def test_diversified_key(self) -> None:
        """UID || AID || system identifier gives AN10922's diversified key."""
        assert diversify_aes128(MASTER, UID + AID + SYSTEM_ID) == H(
            "A8DD63A3B89D54B37CA802473FDA9175")

    def test_tag_key_is_uid_then_system_id(self) -> None:
        """A tag's key is the diversification of its UID followed by the system id."""
        assert tag_key(MASTER, UID, AID + SYSTEM_ID) == H("A8DD63A3B89D54B37CA802473FDA9175")


class TestProperties:
    @given(st.binary(min_size=16, max_size=31), st.binary(min_size=16, max_size=16))
    def test_equals_plain_cmac_from_one_block(self, m: bytes, key: bytes) -> None:
        """Once 01 || M is longer than a block, AN10922 is exactly AES-CMAC over it."""
        assert diversify_aes128(key, m) == _cmac(key, b"\x01" + m)

    @given(st.binary(min_size=1, max_size=15))
    def test_short_inputs_pad_to_two_blocks(self, m: bytes) -> None:
        """Shorter inputs are padded to 32 bytes, so they differ from a plain CMAC."""
        assert diversify_aes128(MASTER, m) != _cmac(MASTER, b"\x01" + m)

    @given(st.binary(min_size=7, max_size=7), st.binary(min_size=7, max_size=7))
    def test_every_uid_gets_its_own_key(self, a: bytes, b: bytes) -> None:
        """Two different UIDs never share a key (one tag's key opens no other tag)."""
        if a != b:
            assert tag_key(MASTER, a, b"pos-loyalty") != tag_key(MASTER, b, b"pos-loyalty")

    @pytest.mark.parametrize("m", [b"", bytes(32)])
    def test_input_length_bounded(self, m: bytes) -> None:
        """The input is 1 to 31 bytes; anything else is a ValueError, not a wrong key."""
        with pytest.raises(ValueError, match="1-31 bytes"):
            diversify_aes128(MASTER, m)

    def test_master_key_length_checked(self) -> None:
        """Only AES-128 master keys are accepted."""
        with pytest.raises(ValueError, match="16 bytes"):
            diversify_aes128(MASTER[:8], UID)
