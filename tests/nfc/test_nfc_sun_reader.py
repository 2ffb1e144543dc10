"""NTAG 424 DNA SUN tags through nfcpy's udp driver and the Reader, with the SUN verifier."""

from __future__ import annotations

from collections.abc import Callable

import ndef
import pytest
from nfc_testkit import ReaderSession

from pos_loyalty.nfc import sun
from pos_loyalty.nfc.cardformat import CardTrust
from pos_loyalty.nfc.demo_keys import DEMO_PUBLIC_KEY
from pos_loyalty.nfc.sim.ntag import Ntag21x
from pos_loyalty.nfc.sim.type4 import Ntag424Dna, PhoneCard
from pos_loyalty.nfc.sunuri import sun_uri_verifier

H = bytes.fromhex
BASE = "https://p.example/t"
META = H("00112233445566778899AABBCCDDEEFF")
FILE = H("FFEEDDCCBBAA99887766554433221100")
KEYS = [sun.SunKeyEntry(BASE, "product", META, FILE),
        sun.SunKeyEntry("https://m.example/c", "member", META, FILE)]
TAG_UID = H("04C0FFEE123480")


def _tag(base: str = BASE, fields: dict[str, str] | None = None) -> Ntag424Dna:
    return Ntag424Dna(base, META, FILE, uid=TAG_UID, counter=5,
                      file_data=sun.pack_file_data(fields or {"sku": "4006381333931"}))


@pytest.fixture
def counters() -> sun.MemoryCounterStore:
    return sun.MemoryCounterStore()


@pytest.fixture
def sun_session(make_session: Callable[..., ReaderSession],
                counters: sun.MemoryCounterStore) -> ReaderSession:
    trust = CardTrust((DEMO_PUBLIC_KEY,), uri_verifiers=(sun_uri_verifier(KEYS, counters),))
    return make_session(trust=trust)


class TestSunThroughReader:
    def test_taps_verify_with_advancing_counter(self, sun_session: ReaderSession) -> None:
        """Each tap of an NTAG 424 DNA is a verified product with the next counter."""
        tag = _tag()
        first = sun_session.tap(tag)
        second = sun_session.tap(tag)
        assert first.kind == second.kind == "product"
        assert first.verified and second.verified
        assert first.tag_type == "Type4Tag"
        assert first.product is not None and second.product is not None
        assert first.product["sku"] == "4006381333931"
        assert int(second.product["sun_counter"]) == int(first.product["sun_counter"]) + 1

    def test_member_sun_card(self, sun_session: ReaderSession) -> None:
        """A SUN member card gives its card number from the encrypted file data."""
        event = sun_session.tap(_tag("https://m.example/c", {"card": "C-4242"}))
        assert (event.kind, event.card_id, event.verified) == ("member", "C-4242", True)

    def test_replayed_url_on_a_static_tag_refused(self, sun_session: ReaderSession) -> None:
        """A SUN URL copied onto a plain tag with the same UID is refused as a replay."""
        tag = _tag()
        assert sun_session.tap(tag).kind == "product"
        url = tag.last_url
        assert url is not None
        clone = Ntag21x("NTAG215", uid=TAG_UID,
                        ndef=b"".join(ndef.message_encoder([ndef.UriRecord(url)])))
        event = sun_session.tap(clone)
        assert event.kind == "refused" and event.reason

    def test_url_on_another_uid_refused(self, sun_session: ReaderSession,
                                        counters: sun.MemoryCounterStore) -> None:
        """A fresh SUN URL served by a tag with another UID is refused, its counter unused."""
        fresh = sun.generate_sun(META, FILE, TAG_UID, 99,
                                 file_data=sun.pack_file_data({"sku": "1"}), pad=bytes(5))
        url = fresh.url(BASE)
        phone = PhoneCard(b"".join(ndef.message_encoder([ndef.UriRecord(url)])),
                          uid=H("04AABBCCDDEEFF"))
        event = sun_session.tap(phone)
        assert event.kind == "refused" and "copied" in (event.reason or "")
        assert counters.last_counter(TAG_UID) is None  # the real tag's counter is not burnt

    def test_other_urls_stay_foreign(self, sun_session: ReaderSession) -> None:
        """A web link that is not a SUN URL is still a foreign tag."""
        tag = Ntag21x("NTAG213", ndef=b"".join(ndef.message_encoder(
            [ndef.UriRecord("https://example.com/?a=1")])))
        event = sun_session.tap(tag)
        assert event.kind == "refused" and "foreign" in (event.reason or "")

    def test_unknown_sun_issuer(self, sun_session: ReaderSession) -> None:
        """A SUN tag under a URL prefix we hold no keys for is somebody else's: foreign."""
        event = sun_session.tap(_tag("https://elsewhere.example/t"))
        assert event.kind == "refused" and "foreign" in (event.reason or "")

    def test_tampered_cmac_refused(self, sun_session: ReaderSession) -> None:
        """A SUN URL under our prefix with a wrong CMAC is refused as forged or tampered."""
        fresh = sun.generate_sun(META, FILE, TAG_UID, 7,
                                 file_data=sun.pack_file_data({"sku": "1"}), pad=bytes(5))
        url = fresh.url(BASE)
        bad = url[:-1] + ("0" if url[-1] != "0" else "1")
        tag = Ntag21x("NTAG215", uid=TAG_UID,
                      ndef=b"".join(ndef.message_encoder([ndef.UriRecord(bad)])))
        event = sun_session.tap(tag)
        assert event.kind == "refused" and "tamper" in (event.reason or "")
