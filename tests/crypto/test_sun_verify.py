"""SUN (NTAG 424 DNA secure dynamic messaging) verification and generation.

The vectors come from NXP AN12196 (pages 12 and 18, with the session MAC key of step 17) and
from the public reference implementation nfc-developer/sdm-backend (custom keys, plain mirror).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pos_loyalty.nfc import sun

ZERO = bytes(16)
H = bytes.fromhex

# AN12196 page 12: https://ntag.nxp.com/424?e=EF963FF7828658A599F3041510671E88&c=94EED9EE65337086
AN1_PICC = H("EF963FF7828658A599F3041510671E88")
AN1_CMAC = H("94EED9EE65337086")
AN1_UID = H("04DE5F1EACC040")
AN1_CTR = 61

# AN12196 page 18: ...?picc_data=FD91..&enc=CEE9..&cmac=ECC1E7F6C6C73BF6
AN2_PICC = H("FD91EC264309878BE6345CBE53BADF40")
AN2_ENC = H("CEE9A53E3E463EF1F459635736738962")
AN2_CMAC = H("ECC1E7F6C6C73BF6")
AN2_MAC_INPUT = b"CEE9A53E3E463EF1F459635736738962&cmac="
AN2_UID = H("04958CAA5C5E80")
AN2_CTR = 8
AN2_SES_MAC_KEY = H("3ED0920E5E6A0320D823D5987FEAFBB1")  # AN12196 p18 step 17

# sdm-backend test_sun3_custom: non-zero keys, MAC over the ENC hex alone
C_META = H("42AFF114F2CB3B6141BE6DC95DFC5416")
C_FILE = H("B62A9BAF092439BD43C62AEE96B970C5")
C_PICC = H("8ACADDEF0A9B62CDAE39A16B83FC14DE")
C_ENC = H("B8436E11F627BB7F543FCC0C1E0D1A89")
C_CMAC = H("238B2543A8DEBAD8")


class TestPublishedVectors:
    def test_an12196_page12_uid_counter_mac(self) -> None:
        """AN12196 page 12 decrypts to its UID and counter 61 and its MAC over nothing holds."""
        res = sun.verify_sun(ZERO, ZERO, AN1_PICC, AN1_CMAC)
        assert res.valid, res.reason
        assert (res.uid, res.counter, res.file_data) == (AN1_UID, AN1_CTR, None)
        assert res.cmac_valid

    def test_an12196_page12_picc_tag_byte(self) -> None:
        """The page 12 PICC data carries tag byte C7 (UID and counter mirrored, 7-byte UID)."""
        picc = sun.decrypt_picc_data(ZERO, AN1_PICC)
        assert picc == sun.PiccData(tag=0xC7, uid=AN1_UID, counter=AN1_CTR)

    def test_an12196_page18_with_encrypted_file_data(self) -> None:
        """AN12196 page 18 verifies with its ENC data and decrypts the file data to 16 x's."""
        res = sun.verify_sun(ZERO, ZERO, AN2_PICC, AN2_CMAC, enc=AN2_ENC,
                             mac_input=AN2_MAC_INPUT)
        assert res.valid, res.reason
        assert (res.uid, res.counter) == (AN2_UID, AN2_CTR)
        assert res.file_data == b"x" * 16

    def test_an12196_page18_session_mac_key(self) -> None:
        """The session MAC key for the page 18 tag equals AN12196's published KSesSDMFileReadMAC."""
        assert sun.session_mac_key(ZERO, AN2_UID, AN2_CTR) == AN2_SES_MAC_KEY

    def test_url_mac_input_matches_an12196_layout(self) -> None:
        """Our URL layout's MAC input is exactly the text AN12196's page 18 MAC covers."""
        assert sun.url_mac_input(AN2_ENC) == AN2_MAC_INPUT

    def test_sdm_backend_custom_keys(self) -> None:
        """sdm-backend's custom-key vector verifies with the MAC over the ENC hex alone."""
        res = sun.verify_sun(C_META, C_FILE, C_PICC, C_CMAC, enc=C_ENC,
                             mac_input=C_ENC.hex().upper().encode())
        assert res.valid, res.reason
        assert (res.uid, res.counter) == (H("041D3C8A2D6B80"), 291)
        assert res.file_data == b"NTXXqno_oBFpwy-V"

    def test_sdm_backend_plain_mirror_mac(self) -> None:
        """A plain UID/counter mirror's MAC (sdm-backend vector) is the SDMMAC of UID+counter."""
        assert sun.sdm_mac(ZERO, H("041E3C8A2D6B80"), 6) == H("4B00064004B0B3D3")


class TestRefusals:
    def test_tampered_cmac(self) -> None:
        """Flipping one bit of the MAC makes the message invalid, with the UID still reported."""
        bad = bytes([AN1_CMAC[0] ^ 0x01]) + AN1_CMAC[1:]
        res = sun.verify_sun(ZERO, ZERO, AN1_PICC, bad)
        assert not res.valid and not res.cmac_valid
        assert res.reason is not None and "MAC does not verify" in res.reason
        assert res.uid == AN1_UID

    def test_tampered_mac_input(self) -> None:
        """Changing the covered text (a swapped ENC value) breaks the MAC."""
        res = sun.verify_sun(ZERO, ZERO, AN2_PICC, AN2_CMAC, enc=AN2_ENC,
                             mac_input=AN2_MAC_INPUT.replace(b"CEE9", b"CEE8"))
        assert not res.valid
        assert res.reason is not None and "MAC" in res.reason

    def test_wrong_meta_key(self) -> None:
        """A wrong meta read key yields an unknown PICC layout, refused with a reason."""
        res = sun.verify_sun(H("11" * 16), ZERO, AN1_PICC, AN1_CMAC)
        assert not res.valid
        assert res.reason is not None and "meta read key" in res.reason
        assert res.uid is None

    def test_wrong_file_key(self) -> None:
        """The right meta key with a wrong file key decrypts the UID but fails the MAC."""
        res = sun.verify_sun(ZERO, H("22" * 16), AN1_PICC, AN1_CMAC)
        assert not res.valid
        assert res.uid == AN1_UID
        assert res.reason is not None and "file key" in res.reason

    def test_repeated_counter(self) -> None:
        """A counter equal to the last one seen for the tag is refused as repeated."""
        res = sun.verify_sun(ZERO, ZERO, AN1_PICC, AN1_CMAC, last_counter=AN1_CTR)
        assert not res.valid and res.cmac_valid
        assert res.reason is not None and "repeated" in res.reason

    def test_older_counter(self) -> None:
        """A counter lower than the last one seen is refused as older."""
        res = sun.verify_sun(ZERO, ZERO, AN1_PICC, AN1_CMAC, last_counter=AN1_CTR + 5)
        assert not res.valid
        assert res.reason is not None and "older" in res.reason

    def test_newer_counter_accepted(self) -> None:
        """A counter above the last one seen is accepted."""
        assert sun.verify_sun(ZERO, ZERO, AN1_PICC, AN1_CMAC, last_counter=AN1_CTR - 1).valid

    @pytest.mark.parametrize(("field", "kwargs"), [
        ("meta read key", {"meta_read_key": bytes(15)}),
        ("file read key", {"file_read_key": bytes(17)}),
        ("PICC data", {"picc": AN1_PICC[:-1]}),
        ("SUN MAC", {"cmac": AN1_CMAC + b"\x00"}),
        ("encrypted file data", {"enc": AN2_ENC[:-3]}),
    ])
    def test_wrong_lengths(self, field: str, kwargs: dict[str, bytes]) -> None:
        """Every field of the wrong length is refused with a reason naming the field."""
        args: dict[str, bytes] = {"meta_read_key": ZERO, "file_read_key": ZERO,
                                  "picc": AN1_PICC, "cmac": AN1_CMAC}
        enc = kwargs.pop("enc", None)
        args.update(kwargs)
        res = sun.verify_sun(args["meta_read_key"], args["file_read_key"], args["picc"],
                             args["cmac"], enc=enc)
        assert not res.valid
        assert res.reason is not None and field in res.reason


class TestCounterStore:
    def test_memory_store_keeps_highest(self) -> None:
        """Recording a lower counter never moves the remembered one backwards."""
        store = sun.MemoryCounterStore()
        store.record(AN1_UID, 10)
        store.record(AN1_UID, 4)
        assert store.last_counter(AN1_UID) == 10
        assert store.last_counter(AN2_UID) is None

    def test_replay_reason_without_counter(self) -> None:
        """A message without a mirrored counter cannot be shown fresh and is refused."""
        assert sun.replay_reason(None, None) is not None
        assert sun.replay_reason(1, None) is None


class TestGenerator:
    def test_generator_reproduces_an12196_page12(self) -> None:
        """With the pad bytes the tag used, the generator rebuilds AN12196's page 12 exactly."""
        msg = sun.generate_sun(ZERO, ZERO, AN1_UID, AN1_CTR, pad=H("DA5CF60941"))
        assert (msg.picc, msg.cmac, msg.enc) == (AN1_PICC, AN1_CMAC, None)

    def test_generator_reproduces_an12196_page18(self) -> None:
        """The generator rebuilds AN12196's page 18 ENC data and MAC from the file data."""
        msg = sun.generate_sun(ZERO, ZERO, AN2_UID, AN2_CTR, file_data=b"x" * 16,
                               pad=H("A243C86DFC"))
        assert (msg.picc, msg.enc, msg.cmac) == (AN2_PICC, AN2_ENC, AN2_CMAC)

    def test_url_layout(self) -> None:
        """The URL carries picc_data, enc and cmac in that order as upper-case hex."""
        msg = sun.SunMessage(picc=AN2_PICC, cmac=AN2_CMAC, enc=AN2_ENC)
        assert msg.url("https://www.my424dna.com/") == (
            "https://www.my424dna.com/?picc_data=FD91EC264309878BE6345CBE53BADF40"
            "&enc=CEE9A53E3E463EF1F459635736738962&cmac=ECC1E7F6C6C73BF6")

    def test_generator_rejects_bad_file_data_length(self) -> None:
        """File data that is not whole AES blocks cannot be mirrored."""
        with pytest.raises(sun.SunFormatError):
            sun.generate_sun(ZERO, ZERO, AN1_UID, 1, file_data=b"short")

    @given(meta=st.binary(min_size=16, max_size=16), file_key=st.binary(min_size=16, max_size=16),
           uid=st.binary(min_size=7, max_size=7), counter=st.integers(0, sun.COUNTER_MAX),
           blocks=st.integers(0, 3), fill=st.binary(min_size=48, max_size=48),
           pad=st.binary(min_size=5, max_size=5))
    def test_verify_inverts_generate(self, meta: bytes, file_key: bytes, uid: bytes,
                                     counter: int, blocks: int, fill: bytes, pad: bytes) -> None:
        """Whatever keys, UID, counter and file data, verification recovers what was generated."""
        data = fill[: 16 * blocks] or None
        msg = sun.generate_sun(meta, file_key, uid, counter, file_data=data, pad=pad)
        res = sun.verify_sun(meta, file_key, msg.picc, msg.cmac, enc=msg.enc,
                             mac_input=sun.url_mac_input(msg.enc))
        assert res.valid, res.reason
        assert (res.uid, res.counter, res.file_data) == (uid, counter, data)


class TestFuzz:
    @given(meta=st.binary(max_size=20), file_key=st.binary(max_size=20),
           picc=st.binary(max_size=24), cmac=st.binary(max_size=10),
           enc=st.none() | st.binary(max_size=40), mac_input=st.binary(max_size=40),
           last=st.none() | st.integers(0, sun.COUNTER_MAX))
    def test_junk_is_invalid_never_raises(self, meta: bytes, file_key: bytes, picc: bytes,
                                          cmac: bytes, enc: bytes | None, mac_input: bytes,
                                          last: int | None) -> None:
        """Any bytes at all give an invalid result with a reason, never an exception."""
        res = sun.verify_sun(meta, file_key, picc, cmac, enc=enc, mac_input=mac_input,
                             last_counter=last)
        assert not res.valid
        assert res.reason


class TestModes:
    def test_lrp_mode_named(self) -> None:
        """An LRP-mode message (sdm-backend's LRP vector, 24-byte PICC data) is refused as LRP."""
        res = sun.verify_sun(ZERO, ZERO, H("1FCBE61B3E4CAD980CBFDD333E7A4AC4A579569BAFD22C5F"),
                             H("4231608BA7B02BA9"))
        assert not res.valid and "LRP" in (res.reason or "")
