"""From a SUN URL read off a tag to a verified product/member identity or a refusal."""

from __future__ import annotations

import ndef
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pos_loyalty.nfc import sun
from pos_loyalty.nfc.cardformat import CardTrust, classify
from pos_loyalty.nfc.events import TapEvent
from pos_loyalty.nfc.sunuri import sun_uri_verifier

H = bytes.fromhex
ZERO = bytes(16)
PMETA = H("0102030405060708090A0B0C0D0E0F10")
PFILE = H("1112131415161718191A1B1C1D1E1F20")
MMETA = H("A1A2A3A4A5A6A7A8A9AAABACADAEAFB0")
MMASTER = H("B1B2B3B4B5B6B7B8B9BABBBCBDBEBFC0")
UID = H("04112233445566")

# AN12196 page 18, exactly as NXP prints the URL
AN_URL = ("https://www.my424dna.com/?picc_data=FD91EC264309878BE6345CBE53BADF40"
          "&enc=CEE9A53E3E463EF1F459635736738962&cmac=ECC1E7F6C6C73BF6")


def member_file_key(uid: bytes) -> bytes:
    """Per-tag file key, as a diversified key scheme would give (test stand-in: XOR)."""
    return bytes(a ^ b for a, b in zip(MMASTER, uid + bytes(9), strict=True))


KEYS = [
    sun.SunKeyEntry("https://p.example/t", "product", PMETA, PFILE),
    sun.SunKeyEntry("https://m.example/c", "member", MMETA, member_file_key),
]


def product_url(counter: int, fields: dict[str, str] | None = None) -> str:
    data = sun.pack_file_data(fields if fields is not None else {"sku": "4006381333931",
                                                                   "lot": "7"})
    msg = sun.generate_sun(PMETA, PFILE, UID, counter, file_data=data)
    return msg.url("https://p.example/t")


def member_url(counter: int, card: str | None = "6001234567") -> str:
    data = sun.pack_file_data({"card": card}) if card is not None else None
    msg = sun.generate_sun(MMETA, member_file_key(UID), UID, counter, file_data=data)
    return msg.url("https://m.example/c")


class TestIdentity:
    def test_an12196_url_verifies_but_data_is_not_ours(self) -> None:
        """NXP's page 18 URL verifies under a zero-key entry; its x-filled data is refused."""
        keys = [sun.SunKeyEntry("https://www.my424dna.com/", "product", ZERO, ZERO)]
        ident = sun.check_sun_uri(AN_URL, keys)
        assert ident.code == "malformed" and ident.uid == "04958CAA5C5E80"

    def test_an12196_short_url_is_not_our_layout(self) -> None:
        """The page 12 short URL (e/c parameters) is not our layout and is refused cleanly."""
        keys = [sun.SunKeyEntry("https://ntag.nxp.com/", "product", ZERO, ZERO)]
        ident = sun.check_sun_uri(
            "https://ntag.nxp.com/424?e=EF963FF7828658A599F3041510671E88&c=94EED9EE65337086",
            keys)
        assert ident.kind == "refused" and ident.code == "malformed"

    def test_product(self) -> None:
        """A product tag's URL yields its product fields, UID and counter, verified."""
        ident = sun.check_sun_uri(product_url(5), KEYS)
        assert ident.kind == "product" and ident.verified
        assert ident.product == {"sku": "4006381333931", "lot": "7"}
        assert (ident.uid, ident.counter, ident.card_id) == ("04112233445566", 5, None)

    def test_member_card_with_diversified_key(self) -> None:
        """A member card's URL yields its card number, verified with its per-tag key."""
        ident = sun.check_sun_uri(member_url(9), KEYS)
        assert ident.kind == "member" and ident.verified
        assert ident.card_id == "6001234567" and ident.product is None

    def test_member_card_without_file_data_uses_uid(self) -> None:
        """A member card mirroring no file data is identified by its authenticated UID."""
        ident = sun.check_sun_uri(member_url(3, card=None), KEYS)
        assert (ident.kind, ident.uid, ident.card_id) == ("member", "04112233445566", None)

    def test_read_through_ndeflib(self) -> None:
        """The URL survives an NDEF round trip when read back with UriRecord.iri."""
        url = product_url(12)
        octets = b"".join(ndef.message_encoder([ndef.UriRecord(url)]))
        iri = next(ndef.message_decoder(octets)).iri
        assert sun.check_sun_uri(iri, KEYS).verified


class TestRefusal:
    def test_unknown_issuer(self) -> None:
        """A SUN URL from a prefix we hold no keys for is refused as unknown_key."""
        ident = sun.check_sun_uri(product_url(1).replace("p.example", "q.example"), KEYS)
        assert ident.code == "unknown_key" and "q.example" in (ident.reason or "")

    def test_tampered_enc(self) -> None:
        """Swapping one hex digit of the ENC data breaks the MAC: refused as tampered."""
        url = product_url(1)
        i = url.index("&enc=") + 5
        url = url[:i] + ("0" if url[i] != "0" else "1") + url[i + 1:]
        ident = sun.check_sun_uri(url, KEYS)
        assert ident.code == "tampered" and ident.uid == "04112233445566"

    def test_sun_data_moved_to_other_issuer(self) -> None:
        """Product SUN data pasted under the member prefix fails under the member keys."""
        ident = sun.check_sun_uri(product_url(1).replace("https://p.example/t",
                                                         "https://m.example/c"), KEYS)
        assert ident.kind == "refused" and ident.code == "tampered"

    def test_replay_refused_after_accept(self) -> None:
        """A URL accepted once is refused as replayed the second time; a newer one passes."""
        store = sun.MemoryCounterStore()
        first = product_url(7)
        assert sun.accept_sun_uri(first, KEYS, store).verified
        again = sun.accept_sun_uri(first, KEYS, store)
        assert again.code == "replayed" and "repeated" in (again.reason or "")
        assert sun.accept_sun_uri(product_url(6), KEYS, store).code == "replayed"
        assert sun.accept_sun_uri(product_url(8), KEYS, store).verified

    def test_forgery_does_not_move_counter(self) -> None:
        """A refused URL records nothing, so it cannot lock out the genuine tag."""
        store = sun.MemoryCounterStore()
        url = product_url(100).replace("&cmac=", "&cmac=0")[:-1]
        assert sun.accept_sun_uri(url, KEYS, store).code == "tampered"
        assert store.last_counter(UID) is None

    @pytest.mark.parametrize("url", [
        "https://p.example/t",
        "https://p.example/t?cmac=0011223344556677",
        "https://p.example/t?picc_data=00&picc_data=11&cmac=00",
        "https://p.example/t?picc_data=zz&cmac=0011223344556677",
        "https://p.example/t?picc_data=" + "00" * 16 + "&cmac=00",
    ])
    def test_malformed(self, url: str) -> None:
        """URLs missing, repeating or garbling the SUN parameters are refused with a reason."""
        ident = sun.check_sun_uri(url, KEYS)
        assert ident.kind == "refused" and ident.reason and ident.code in (
            "malformed", "tampered")

    @given(st.text(max_size=200))
    def test_any_text_refused_never_raises(self, text: str) -> None:
        """Any text under our prefix is refused with a reason, never an exception."""
        ident = sun.check_sun_uri("https://p.example/t?" + text, KEYS)
        assert ident.kind == "refused" and ident.reason


class TestFileData:
    def test_pack_parse_round_trip(self) -> None:
        """Packed fields are whole AES blocks and parse back to the same dict."""
        fields = {"sku": "4006381333931", "lot": "7", "exp": "2027-01"}
        packed = sun.pack_file_data(fields)
        assert len(packed) % 16 == 0
        assert sun.parse_file_data(packed) == fields

    def test_pack_refuses_separators(self) -> None:
        """A value containing ';' cannot be packed."""
        with pytest.raises(sun.SunFormatError):
            sun.pack_file_data({"sku": "1;2"})

    @given(st.binary(max_size=64))
    def test_parse_junk(self, data: bytes) -> None:
        """Any bytes parse to a dict of printable text or None, never an exception."""
        fields = sun.parse_file_data(data)
        assert fields is None or all(k and k.isprintable() for k in fields)


def octets(uri: str) -> bytes:
    return b"".join(ndef.message_encoder([ndef.UriRecord(uri)]))


def tap_event(uid: bytes, data: bytes | None, store: sun.CounterStore) -> TapEvent:
    """What a reader reports: classify() with the SUN verifier in its trust."""
    trust = CardTrust(uri_verifiers=(sun_uri_verifier(KEYS, store),))
    return classify(uid, "Type4Tag", data, trust)


class TestTapEvent:
    def test_product_event(self) -> None:
        """A SUN product tag becomes a verified product TapEvent carrying its fields and URL."""
        url = product_url(3)
        event = tap_event(UID, octets(url), sun.MemoryCounterStore())
        assert (event.kind, event.verified) == ("product", True)
        assert event.product == {"sku": "4006381333931", "lot": "7", "url": url,
                                 "sun_counter": "3"}
        assert (event.uid, event.tag_type) == ("04112233445566", "Type4Tag")

    def test_member_event(self) -> None:
        """A SUN member card becomes a verified member TapEvent with its card number."""
        event = tap_event(UID, octets(member_url(3)), sun.MemoryCounterStore())
        assert (event.kind, event.card_id) == ("member", "6001234567")

    def test_copied_to_other_uid(self) -> None:
        """A genuine SUN URL on a tag with another UID is refused as copied."""
        event = tap_event(H("04999999999999"), octets(product_url(4)), sun.MemoryCounterStore())
        assert event.kind == "refused"
        assert "copied" in (event.reason or "")

    def test_replay_event(self) -> None:
        """The same URL read twice: the second TapEvent is a refusal naming the replay."""
        store = sun.MemoryCounterStore()
        data = octets(product_url(5))
        first = tap_event(UID, data, store)
        second = tap_event(UID, data, store)
        assert first.verified
        assert second.kind == "refused"
        assert "replayed" in (second.reason or "")

    @pytest.mark.parametrize("data", [
        None, b"", b"\xd1\x01\x04T\x02enHi",
        b"".join(ndef.message_encoder([ndef.UriRecord("https://other.example/x?picc_data=00")])),
        b"\xff\x00garbage"])
    def test_not_ours_is_left_to_static_formats(self, data: bytes | None) -> None:
        """No NDEF, text, another site's URL or garbage: the static card formats decide."""
        assert tap_event(UID, data, sun.MemoryCounterStore()) == classify(
            UID, "Type4Tag", data, CardTrust())

    @given(st.binary(max_size=120))
    def test_any_ndef_bytes(self, data: bytes) -> None:
        """Any NDEF bytes give a refused or verified event, never an exception."""
        event = tap_event(UID, data, sun.MemoryCounterStore())
        assert event.kind == "refused" or event.verified
