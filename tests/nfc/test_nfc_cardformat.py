"""Member card and product tag formats, and classify(): pure, no reader involved."""

from __future__ import annotations

import ndef
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pos_loyalty.nfc.cardformat import (
    MEMBER_RECORD_TYPE,
    CardTrust,
    Issuer,
    classify,
    key_id,
    member_card_ndef,
    product_tag_ndef,
    product_tag_uri,
)
from pos_loyalty.nfc.demo_keys import DEMO_ISSUER, DEMO_PUBLIC_KEY, demo_trust
from pos_loyalty.nfc.events import TapEvent

UID = bytes.fromhex("04A1B2C3D4E5F6")
OTHER_UID = bytes.fromhex("04A1B2C3D4E5F7")
TRUST = demo_trust()


def _message(*records: ndef.Record) -> bytes:
    return b"".join(ndef.message_encoder(list(records)))


def _member_payload(card_id: str = "CARD-1", uid: bytes = UID) -> bytes:
    records = list(ndef.message_decoder(member_card_ndef(card_id, uid, DEMO_ISSUER)))
    return bytes(records[0].data)


class TestMemberCard:
    def test_round_trip_verified(self) -> None:
        """A card built for a UID classifies as a verified member with its card number."""
        event = classify(UID, "NTAG213", member_card_ndef("CARD-9", UID, DEMO_ISSUER), TRUST)
        assert (event.kind, event.card_id, event.verified) == ("member", "CARD-9", True)
        assert event.uid == UID.hex().upper()

    def test_fits_an_ntag213(self) -> None:
        """A 32-character card number still fits NTAG213's 144 bytes with TLV overhead."""
        assert len(member_card_ndef("X" * 32, UID, DEMO_ISSUER)) + 5 + 4 + 1 <= 144

    def test_bound_to_uid(self) -> None:
        """The same record on a tag with another UID is refused as forged or copied."""
        event = classify(OTHER_UID, "NTAG213", member_card_ndef("C1", UID, DEMO_ISSUER), TRUST)
        assert event.kind == "refused" and event.reason and "copied" in event.reason

    def test_altered_card_number_refused(self) -> None:
        """Changing the card number without re-signing breaks the signature."""
        payload = bytearray(_member_payload("CARD-1"))
        payload[6 + 5] = ord("2")
        event = classify(UID, "NTAG213", _message(ndef.Record(MEMBER_RECORD_TYPE, "",
                                                               bytes(payload))), TRUST)
        assert event.kind == "refused" and event.reason and "forged" in event.reason

    def test_unknown_issuer(self) -> None:
        """A card signed by an untrusted key names the unknown key id."""
        other = Issuer.generate()
        event = classify(UID, "NTAG213", member_card_ndef("C1", UID, other), TRUST)
        assert event.kind == "refused"
        assert event.reason and other.key_id.hex() in event.reason

    def test_second_trusted_issuer(self) -> None:
        """Any of several configured issuer keys verifies its own cards."""
        other = Issuer.generate()
        trust = CardTrust((DEMO_PUBLIC_KEY, other.public_key))
        event = classify(UID, "NTAG213", member_card_ndef("C1", UID, other), trust)
        assert event.kind == "member" and event.verified

    def test_revoked(self) -> None:
        """A genuine but revoked card is refused, with its number."""
        trust = demo_trust(revoked=frozenset({"C1"}))
        event = classify(UID, "NTAG213", member_card_ndef("C1", UID, DEMO_ISSUER), trust)
        assert event.kind == "refused" and event.card_id == "C1"
        assert event.reason and "revoked" in event.reason

    @pytest.mark.parametrize("bad", ["", "x" * 33, "has space", "ümlaut", "a/b"])
    def test_invalid_card_numbers_rejected_when_building(self, bad: str) -> None:
        """Card numbers outside 1-32 of [A-Za-z0-9_-] cannot be issued."""
        with pytest.raises(ValueError):
            member_card_ndef(bad, UID, DEMO_ISSUER)

    @pytest.mark.parametrize("payload,words", [
        (b"\x01\x00", "too short"),
        (b"\x02" + b"\x00" * 80, "not supported"),
        (b"\x01" + b"\x00" * 4 + b"\x05" + b"AB" + b"\x00" * 64, "wrong data length"),
        (b"\x01" + b"\x00" * 4 + b"\x02" + b"A " + b"\x00" * 64, "invalid card number"),
    ])
    def test_damaged_payloads(self, payload: bytes, words: str) -> None:
        """Broken member records get a specific reason, never an exception."""
        event = classify(UID, "NTAG213",
                         _message(ndef.Record(MEMBER_RECORD_TYPE, "", payload)), TRUST)
        assert event.kind == "refused" and event.reason and words in event.reason

    def test_two_member_records_refused(self) -> None:
        """A message with two card records is ambiguous and refused."""
        rec = ndef.Record(MEMBER_RECORD_TYPE, "", _member_payload())
        event = classify(UID, "NTAG213", _message(rec, rec), TRUST)
        assert event.kind == "refused" and event.reason and "more than one" in event.reason


class TestProductTag:
    def test_round_trip(self) -> None:
        """A product tag classifies as a verified product with its code and URL."""
        octets = product_tag_ndef("4006381333931", UID, DEMO_ISSUER)
        event = classify(UID, "NTAG215", octets, TRUST)
        assert event.kind == "product" and event.verified
        assert event.product is not None
        assert event.product["product"] == "4006381333931"
        assert event.product["url"].startswith("https://")

    def test_phone_reads_a_plain_https_link(self) -> None:
        """ndeflib (as a phone would) sees a single https URI record."""
        records = list(ndef.message_decoder(product_tag_ndef("SKU-1", UID, DEMO_ISSUER)))
        assert len(records) == 1 and isinstance(records[0], ndef.UriRecord)
        assert records[0].iri == product_tag_uri("SKU-1", UID, DEMO_ISSUER)

    def test_copied_to_other_tag(self) -> None:
        """A product URI on a tag with another UID is refused as copied."""
        event = classify(OTHER_UID, "NTAG215", product_tag_ndef("SKU-1", UID, DEMO_ISSUER),
                         TRUST)
        assert event.kind == "refused" and event.reason and "copied" in event.reason

    def test_altered_product_code(self) -> None:
        """Changing the product code in the URI breaks the signature."""
        uri = product_tag_uri("SKU-1", UID, DEMO_ISSUER).replace("/p/SKU-1", "/p/SKU-2")
        event = classify(UID, "NTAG215", _message(ndef.UriRecord(uri)), TRUST)
        assert event.kind == "refused" and event.reason and "forged" in event.reason

    def test_custom_host_is_accepted(self) -> None:
        """The signature covers product and UID, so any shop domain works."""
        octets = product_tag_ndef("SKU-1", UID, DEMO_ISSUER, "https://shop.example.org/")
        assert classify(UID, "NTAG215", octets, TRUST).kind == "product"

    def test_unknown_product_issuer(self) -> None:
        """A product tag signed by an untrusted key is refused."""
        octets = product_tag_ndef("SKU-1", UID, Issuer.generate())
        event = classify(UID, "NTAG215", octets, TRUST)
        assert event.kind == "refused" and event.reason and "unknown issuer" in event.reason


class TestRefusals:
    def test_no_ndef_blank(self) -> None:
        """No NDEF area: refused as blank."""
        event = classify(UID, "NTAG213", None, TRUST)
        assert event.kind == "refused" and event.reason and "blank" in event.reason

    def test_empty_ndef_blank(self) -> None:
        """An empty NDEF message: refused as blank."""
        assert "blank" in (classify(UID, "NTAG213", b"", TRUST).reason or "")

    def test_foreign_uri(self) -> None:
        """A web link that is not our product format is foreign."""
        event = classify(UID, "NTAG213", _message(ndef.UriRecord("https://example.com/x")),
                         TRUST)
        assert event.kind == "refused" and event.reason and "web link" in event.reason

    def test_legacy_refused_when_disabled(self) -> None:
        """A MIFARE Classic without NDEF is refused while legacy cards are off."""
        event = classify(b"\x1a\x2b\x3c\x4d", "MIFARE Classic", None, TRUST)
        assert event.kind == "refused" and event.reason and "legacy" in event.reason

    def test_legacy_accepted_unverified(self) -> None:
        """With legacy cards on, a UID-only card is a member known by its UID only, unverified."""
        trust = demo_trust(accept_legacy_uid=True)
        event = classify(b"\x1a\x2b\x3c\x4d", "MIFARE Classic", None, trust)
        assert (event.kind, event.uid, event.card_id, event.verified) == (
            "member", "1A2B3C4D", None, False)

    def test_oversized_refused(self) -> None:
        """Absurdly long NDEF data is refused without decoding."""
        assert classify(UID, "Type4Tag", b"\xd1" * 10000, TRUST).kind == "refused"


class TestUriVerifiers:
    @staticmethod
    def _sun_like(uid: bytes, tag_type: str, uri: str) -> TapEvent | None:
        if not uri.startswith("https://sun.example/"):
            return None
        ok = uri.endswith("cmac=GOOD")
        return TapEvent("product" if ok else "refused", uid.hex().upper(), tag_type,
                        product={"product": "SUN-1"} if ok else None, verified=ok,
                        reason=None if ok else "tampered SUN message")

    def test_verifier_decides_its_uris(self) -> None:
        """A plugged-in URI verifier answers for the URIs it recognises."""
        trust = CardTrust((DEMO_PUBLIC_KEY,), uri_verifiers=(self._sun_like,))
        good = _message(ndef.UriRecord("https://sun.example/?picc=1&cmac=GOOD"))
        bad = _message(ndef.UriRecord("https://sun.example/?picc=1&cmac=BAD"))
        assert classify(UID, "Type4Tag", good, trust).kind == "product"
        refused = classify(UID, "Type4Tag", bad, trust)
        assert refused.kind == "refused" and refused.reason == "tampered SUN message"

    def test_other_uris_stay_foreign_and_products_ours(self) -> None:
        """URIs the verifier does not know stay foreign; our product tags never reach it."""
        seen: list[str] = []

        def spy(uid: bytes, tag_type: str, uri: str) -> TapEvent | None:
            seen.append(uri)
            return None

        trust = CardTrust((DEMO_PUBLIC_KEY,), uri_verifiers=(spy,))
        foreign = classify(UID, "NTAG213", _message(ndef.UriRecord("https://a.example/")), trust)
        assert foreign.kind == "refused" and "foreign" in (foreign.reason or "")
        assert classify(UID, "NTAG215", product_tag_ndef("SKU-1", UID, DEMO_ISSUER),
                        trust).kind == "product"
        assert seen == ["https://a.example/"]


class TestTrust:
    def test_key_id_is_sha256_prefix(self) -> None:
        """The key id is the first 4 bytes of SHA-256 over the raw public key."""
        import hashlib
        assert key_id(DEMO_PUBLIC_KEY) == hashlib.sha256(DEMO_PUBLIC_KEY).digest()[:4]

    def test_from_hex(self) -> None:
        """Trust built from hex keys (config files) verifies the demo card."""
        trust = CardTrust.from_hex([DEMO_PUBLIC_KEY.hex()], revoked=["X"])
        assert trust.public_key(DEMO_ISSUER.key_id) is not None
        assert "X" in trust.revoked_cards

    def test_bad_key_length(self) -> None:
        """A public key that is not 32 bytes is a configuration error."""
        with pytest.raises(ValueError):
            CardTrust((b"\x00" * 31,))

    def test_empty_trust_refuses_demo_cards(self) -> None:
        """A terminal trusting no issuer refuses even demo cards."""
        event = classify(UID, "NTAG213", member_card_ndef("C1", UID, DEMO_ISSUER), CardTrust())
        assert event.kind == "refused"


def _check(event: TapEvent) -> None:
    assert isinstance(event, TapEvent)
    if event.kind == "refused":
        assert event.reason
    else:
        assert event.kind in ("member", "product")


_record = st.builds(
    lambda t, name, data: ndef.Record(t, name, data),
    st.sampled_from([MEMBER_RECORD_TYPE, "urn:nfc:wkt:U", "urn:nfc:wkt:T", "text/plain",
                     "urn:nfc:ext:example.com:x", "unknown", "urn:nfc:wkt:Sp"]),
    st.text(max_size=5).filter(lambda s: all(0x20 <= ord(c) < 0x7f for c in s)),
    st.binary(max_size=120),
)


class TestFuzz:
    @settings(max_examples=400, deadline=None)
    @given(uid=st.binary(min_size=0, max_size=10), data=st.binary(max_size=300))
    def test_any_bytes_give_an_event(self, uid: bytes, data: bytes) -> None:
        """Arbitrary NDEF bytes never raise: always a TapEvent, refusals with a reason."""
        _check(classify(uid, "NTAG213", data, TRUST))

    @settings(max_examples=300, deadline=None)
    @given(records=st.lists(_record, min_size=1, max_size=3))
    def test_well_framed_random_records(self, records: list[ndef.Record]) -> None:
        """Validly framed messages with random types and payloads never raise."""
        try:
            octets = _message(*records)
        except ndef.EncodeError:
            return
        event = classify(UID, "NTAG213", octets, TRUST)
        _check(event)
        assert event.kind == "refused"  # nothing random is signed by the demo key

    @settings(max_examples=200, deadline=None)
    @given(data=st.binary(max_size=300), flip=st.integers(min_value=0, max_value=1000))
    def test_mutated_genuine_card(self, data: bytes, flip: int) -> None:
        """A genuine card with any one byte changed is refused or still itself, never raises."""
        octets = bytearray(member_card_ndef("CARD-1", UID, DEMO_ISSUER))
        octets[flip % len(octets)] ^= (data[0] if data else 0x01) or 0x01
        event = classify(UID, "NTAG213", bytes(octets), TRUST)
        _check(event)
        assert event.kind == "refused" or event.card_id == "CARD-1"

    @settings(max_examples=300, deadline=None)
    @given(path=st.sampled_from(["/p/SKU-1", "/p/", "/p/a/b", "/x/SKU-1", "/p/" + "9" * 40]),
           u=st.one_of(st.just(UID.hex().upper()), st.text(max_size=20)),
           k=st.one_of(st.just(DEMO_ISSUER.key_id.hex()), st.text(max_size=10)),
           s=st.one_of(st.text(alphabet="AZaz09-_=", max_size=90), st.just("")),
           extra=st.sampled_from(["", "&u=1", "&x=2", "&&", "#frag"]))
    def test_product_like_uris(self, path: str, u: str, k: str, s: str, extra: str) -> None:
        """URIs shaped like our product links but with any field values never raise."""
        uri = f"https://loyalty.example{path}?u={u}&k={k}&s={s}{extra}"
        try:
            octets = _message(ndef.UriRecord(uri))
        except (ndef.EncodeError, ValueError):
            return
        event = classify(UID, "NTAG215", octets, TRUST)
        _check(event)
        assert event.kind == "refused"  # no random signature verifies

    @settings(max_examples=200, deadline=None)
    @given(uri=st.text(max_size=200))
    def test_random_uris(self, uri: str) -> None:
        """Any URI text in a URI record gives an event, never an exception."""
        try:
            octets = _message(ndef.UriRecord(uri))
        except (ndef.EncodeError, ValueError):
            return
        _check(classify(UID, "NTAG215", octets, TRUST))
