"""The Reader over nfcpy's real ContactlessFrontend('udp:...') against emulated tags."""

from __future__ import annotations

import time
from collections.abc import Callable

import nfc.tag.tt2
import nfc.tag.tt2_nxp
import pytest
from nfc_testkit import ReaderSession, nfcpy_activate

from pos_loyalty.nfc.cardformat import Issuer
from pos_loyalty.nfc.demo_keys import demo_trust
from pos_loyalty.nfc.sim import cards
from pos_loyalty.nfc.sim.emulator import TagEmulator
from pos_loyalty.nfc.sim.ntag import Ntag21x


class TestNfcpyIdentifiesEmulatedTags:
    @pytest.mark.parametrize("model", ["NTAG213", "NTAG215", "NTAG216"])
    def test_ntag_model_is_nfcpys_own_class(self, emulator: TagEmulator, model: str) -> None:
        """nfcpy's activation (1A probe, re-sense, GET_VERSION) yields its real NTAG21x class."""
        tag = cards.member_card("CARD-1", model=model)
        found = nfcpy_activate(emulator, tag)
        assert type(found) is getattr(nfc.tag.tt2_nxp, model)
        assert bytes(found.identifier) == tag.uid

    def test_member_card_ndef_read_by_nfcpy(self, emulator: TagEmulator) -> None:
        """nfcpy reads back exactly the NDEF message the emulated card carries."""
        tag = cards.member_card("CARD-42")
        octets = nfcpy_activate(emulator, tag, lambda t: bytes(t.ndef.octets))
        assert b"pos-loyalty.org:member" in octets
        assert b"CARD-42" in octets

    def test_legacy_card_is_a_generic_type2_tag(self, emulator: TagEmulator) -> None:
        """A SAK 0x08 UID-only card is activated by nfcpy as a plain Type2Tag without NDEF."""
        tag = cards.legacy_card()
        found = nfcpy_activate(emulator, tag, lambda t: (type(t), t.ndef, t.target.sel_res))
        assert found[0] is nfc.tag.tt2.Type2Tag
        assert found[1] is None
        assert bytes(found[2]) == b"\x08"


class TestReaderTaps:
    def test_member_card_gives_verified_member_event(self, session: ReaderSession) -> None:
        """A demo-signed NTAG213 member card becomes a verified member TapEvent."""
        tag = cards.member_card("CARD-0001")
        started = time.perf_counter()
        event = session.tap(tag)
        elapsed = (time.perf_counter() - started) * 1000
        print(f"present -> TapEvent {elapsed:.1f} ms, discovered -> read {event.read_ms:.1f} ms")
        assert event.kind == "member"
        assert event.verified is True
        assert event.card_id == "CARD-0001"
        assert event.uid == tag.uid.hex().upper()
        assert event.tag_type == "NTAG213"
        assert event.read_ms > 0 and event.read_done > 0

    def test_blank_tag_refused(self, session: ReaderSession) -> None:
        """A factory-blank NTAG is refused as blank."""
        event = session.tap(cards.blank_tag())
        assert event.kind == "refused"
        assert event.reason is not None and "blank" in event.reason

    def test_unformatted_tag_refused(self, session: ReaderSession) -> None:
        """An NTAG without an NDEF capability container is refused as blank."""
        event = session.tap(cards.unformatted_tag())
        assert event.kind == "refused"
        assert event.reason is not None and "blank" in event.reason

    def test_foreign_ndef_refused(self, session: ReaderSession) -> None:
        """A tag carrying somebody else's web link is refused as foreign."""
        event = session.tap(cards.foreign_tag())
        assert event.kind == "refused"
        assert event.reason is not None and "foreign" in event.reason

    def test_forged_signature_refused(self, session: ReaderSession) -> None:
        """A member card whose signature bytes were altered is refused as forged."""
        tag = cards.member_card("CARD-0002")
        mem = bytearray(tag.memory[16:16 + tag.model.user_bytes])
        assert mem[5] == 0x03  # NDEF TLV after the NTAG213 lock control TLV
        mem[5 + 2 + mem[6] - 1] ^= 0x01  # last byte of the record: the signature
        tag.load_user_memory(bytes(mem))
        event = session.tap(tag)
        assert event.kind == "refused"
        assert event.reason is not None and "forged" in event.reason

    def test_record_copied_to_another_uid_refused(self, session: ReaderSession) -> None:
        """The exact member record copied onto another tag fails its UID-bound signature."""
        original = cards.member_card("CARD-0003")
        assert session.tap(original).kind == "member"
        event = session.tap(cards.copied_card(original))
        assert event.kind == "refused"
        assert event.reason is not None and "copied" in event.reason

    def test_unknown_issuer_refused(self, session: ReaderSession) -> None:
        """A well-formed card signed by a key the terminal does not trust is refused."""
        event = session.tap(cards.member_card("CARD-0004", issuer=Issuer.generate()))
        assert event.kind == "refused"
        assert event.reason is not None and "unknown issuer" in event.reason

    def test_revoked_card_refused(self, make_session: Callable[..., ReaderSession]) -> None:
        """A genuine card on the revocation list is refused and named."""
        session = make_session(trust=demo_trust(revoked=frozenset({"CARD-0005"})))
        event = session.tap(cards.member_card("CARD-0005"))
        assert event.kind == "refused"
        assert event.card_id == "CARD-0005"
        assert event.reason is not None and "revoked" in event.reason

    def test_product_tag_recognised(self, session: ReaderSession) -> None:
        """A signed product URI tag is a verified product event, not a member."""
        event = session.tap(cards.product_tag("4006381333931"))
        assert event.kind == "product"
        assert event.verified is True
        assert event.product is not None and event.product["product"] == "4006381333931"
        assert event.card_id is None

    def test_legacy_card_refused_by_default(self, session: ReaderSession) -> None:
        """A UID-only MIFARE Classic-like card is refused when legacy cards are off."""
        event = session.tap(cards.legacy_card())
        assert event.kind == "refused"
        assert event.tag_type == "MIFARE Classic"
        assert event.reason is not None and "legacy" in event.reason

    def test_legacy_card_accepted_unverified_when_enabled(
        self, make_session: Callable[..., ReaderSession],
    ) -> None:
        """With legacy UID cards enabled the card is known by its UID only, unverified."""
        session = make_session(trust=demo_trust(accept_legacy_uid=True))
        tag = cards.legacy_card()
        event = session.tap(tag)
        assert event.kind == "member"
        assert event.verified is False
        assert (event.uid, event.card_id) == (tag.uid.hex().upper(), None)

    def test_sequence_of_taps_each_reported(self, session: ReaderSession) -> None:
        """Different cards tapped one after another are each reported once, in order."""
        tags = [cards.member_card(f"SEQ-{i}") for i in range(3)]
        got = [session.tap(t).card_id for t in tags]
        assert got == ["SEQ-0", "SEQ-1", "SEQ-2"]


class TestOneTapPerPresentation:
    def test_card_held_on_reader_is_one_tap(self, session: ReaderSession) -> None:
        """A card left on the reader for a second is reported once (nfcpy waits for removal)."""
        tag = cards.member_card("HOLD-1")
        session.emulator.present(tag)
        assert session.next_event().card_id == "HOLD-1"
        time.sleep(1.0)
        reads_while_held = tag.reads
        session.emulator.remove()
        assert session.events.empty()
        assert reads_while_held > 3  # the presence check kept talking to the card

    def test_legacy_card_held_is_one_tap(self, make_session: Callable[..., ReaderSession]) -> None:
        """A held UID-only card, whose page reads fail, is still one tap (re-select check)."""
        session = make_session(trust=demo_trust(accept_legacy_uid=True))
        tag = cards.legacy_card()
        session.emulator.present(tag)
        assert session.next_event().kind == "member"
        time.sleep(1.0)
        session.emulator.remove()
        assert session.events.empty()

    def test_same_card_back_within_debounce_is_ignored(
        self, make_session: Callable[..., ReaderSession],
    ) -> None:
        """The same UID back within the debounce window is not reported; another card is."""
        session = make_session(debounce_s=30.0)
        tag = cards.member_card("BOUNCE-1")
        assert session.tap(tag).card_id == "BOUNCE-1"
        session.emulator.present(tag)
        time.sleep(0.5)
        session.emulator.remove()
        assert session.events.empty()
        assert session.tap(cards.member_card("OTHER-1")).card_id == "OTHER-1"

    def test_same_card_back_after_debounce_is_reported(
        self, make_session: Callable[..., ReaderSession],
    ) -> None:
        """Once the debounce window has passed, the same card is a new tap."""
        session = make_session(debounce_s=0.2)
        tag = cards.member_card("BOUNCE-2")
        assert session.tap(tag).card_id == "BOUNCE-2"
        time.sleep(0.8)
        assert session.tap(tag).card_id == "BOUNCE-2"


class FlakyTag(Ntag21x):
    """An NTAG that misses its first READ commands, like a card at the edge of the field."""

    def __init__(self, drop_reads: int, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.drop_reads = drop_reads

    def handle(self, frame: bytes) -> bytes | None:
        if frame[:1] == b"\x30" and frame != b"\x30\x00" and self.drop_reads > 0:
            self.drop_reads -= 1
            return None
        return super().handle(frame)


class TestSecondRead:
    def test_failed_read_is_read_again_before_refusing(self, session: ReaderSession) -> None:
        """A card whose first read times out is read once more and reported as a member."""
        original = cards.member_card("EDGE-1")
        tag = FlakyTag(3, uid=original.uid)
        tag.load_user_memory(original.memory[16:16 + tag.model.user_bytes])
        event = session.tap(tag)
        assert (event.kind, event.card_id, event.verified) == ("member", "EDGE-1", True)
        assert tag.drop_reads == 0

    def test_persistently_failing_read_is_refused(self, session: ReaderSession) -> None:
        """A card that fails both reads is refused with a tap-again reason, once."""
        event = session.tap(FlakyTag(1000))
        assert event.kind == "refused" and "tap again" in (event.reason or "")
        assert session.events.empty()


class TestReaderSurvives:
    def test_failing_tap_handler_does_not_stop_reader(self, emulator: TagEmulator) -> None:
        """An exception in on_tap is logged and the next tap is still delivered."""
        import queue
        import threading

        from pos_loyalty.nfc.reader import Reader

        got: queue.Queue[str] = queue.Queue()

        def on_tap(event: object) -> None:
            card = getattr(event, "card_id", None)
            got.put(str(card))
            if card == "BOOM":
                raise RuntimeError("handler bug")

        reader = Reader(emulator.path, trust=demo_trust(), debounce_s=0)
        stop = threading.Event()
        thread = threading.Thread(target=reader.run, args=(on_tap, stop))
        thread.start()
        try:
            for card in ("BOOM", "AFTER"):
                emulator.present(cards.member_card(card))
                assert got.get(timeout=5) == card
                emulator.remove()
        finally:
            stop.set()
            thread.join(timeout=10)
        assert reader.errors >= 1
        assert not thread.is_alive()

    def test_ntag_nak_mid_read_still_gives_event(self, session: ReaderSession) -> None:
        """A tag whose NDEF length points past its memory is refused, never crashing the loop."""
        tag = Ntag21x("NTAG213")
        tag.load_user_memory(b"\x03\xff\x01\x00" + b"\xd1" * 20)  # 256-byte NDEF claimed
        event = session.tap(tag)
        assert event.kind == "refused"
        assert session.tap(cards.member_card("NEXT")).kind == "member"
