"""The Leakage Resilient Primitive against NXP AN12304's published test vectors."""

from __future__ import annotations

import pytest

from pos_loyalty.nfc import lrp

H = bytes.fromhex
K1 = H("567826B8DA8E768432A9548DBE4AA3A0")


class TestAn12304Vectors:
    def test_plaintexts(self) -> None:
        """Algorithm 1 gives AN12304's P0 and P15."""
        p = lrp.plaintexts(K1)
        assert (p[0], p[15]) == (H("AC20D39F5341FE98DFCA21DA86BA7914"),
                                 H("71B444AF257A93215311D758DD333247"))

    def test_updated_keys(self) -> None:
        """Algorithm 2 gives AN12304's K'0 and K'2."""
        uk = lrp.updated_keys(K1)
        assert (uk[0], uk[2]) == (H("163D14ED24ED935373568EC521E96CF4"),
                                  H("FE30AB50467E61783BFE6B5E0560160E"))

    @pytest.mark.parametrize(("key", "u", "x", "final", "out"), [
        ("567826B8DA8E768432A9548DBE4AA3A0", 2, "1359", True,
         "1BA2C0C578996BC497DD181C6885A9DD"),
        ("88B95581002057A93E421EFE4076338B", 2, "77299D", True,
         "E9C04556A214AC3297B83E4BDF46F142"),
        ("9AFF3EF56FFEC3153B1CADB48B445409", 3, "4B073B247CD48F7E0A", False,
         "909415E5C8BE77563050F2227E17C0E4"),
    ])
    def test_evaluate(self, key: str, u: int, x: str, final: bool, out: str) -> None:
        """Algorithm 3 gives AN12304's outputs."""
        k = H(key)
        assert lrp.evaluate(lrp.plaintexts(k), lrp.updated_keys(k)[u], H(x),
                            final=final) == H(out)

    def test_lricb(self) -> None:
        """LRICB decrypts AN12304's ciphertext (its padded plaintext) and encrypts it back."""
        cipher = lrp.Lrp(H("E0C4935FF0C254CD2CEF8FDDC32460CF"))
        ct = H("FCBBACAA4F29182464F99DE41085266F480E863E487BAAF687B43ED1ECE0D623")
        padded = H("012D7F1653CAF6503C6AB0C1010E8CB0") + b"\x80" + bytes(15)
        assert cipher.decrypt(ct, H("C3315DBF")) == padded
        assert cipher.encrypt(padded, H("C3315DBF")) == ct

    @pytest.mark.parametrize(("key", "msg", "mac"), [
        ("8195088CE6C393708EBBE6C7914ECB0B", "BBD5B85772C7", "AD8595E0B49C5C0DB18E77355F5AAFF6"),
        ("E2F84A0B0AF40EFEB3EEA215A436605C", "8BF1DDA9FE445560A4F4EB9CE0",
         "D04382DF71BC293FEC4BB10BDB13805F"),
        ("5AA9F6C6DE5138113DF5D6B6C77D5D52", "A4434D740C2CB665FE5396959189383F",
         "8B43ADF767E46B692E8F24E837CB5EFC"),
    ])
    def test_cmac(self, key: str, msg: str, mac: str) -> None:
        """CMAC_LRP gives AN12304's MACs for partial and whole final blocks."""
        assert lrp.Lrp(H(key)).cmac(H(msg)) == H(mac)

    def test_counter_wraps(self) -> None:
        """The LRICB counter wraps at its width."""
        cipher = lrp.Lrp(K1)
        two = cipher.encrypt(bytes(32), H("FFFF"))
        assert two[16:] == cipher.encrypt(bytes(16), H("0000"))
