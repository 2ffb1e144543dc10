"""Random tag memory through nfcpy's real TLV/NDEF parsing and our Reader: always one event."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nfc_testkit import ReaderSession

from pos_loyalty.nfc.sim import cards
from pos_loyalty.nfc.sim.ntag import Ntag21x

_CC = st.one_of(st.just(b"\xe1\x10\x12\x00"), st.binary(min_size=4, max_size=4))
_TLV_START = st.sampled_from([b"", b"\x03", b"\x03\xff", b"\x01\x03\xa0\x0c\x34\x03",
                              b"\x02\x03", b"\x00\x00\x03", b"\xfe"])


class TestRandomMemory:
    @pytest.mark.slow(seconds=10)
    @settings(max_examples=30, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(cc=_CC, start=_TLV_START, body=st.binary(max_size=144))
    def test_any_memory_gives_one_event(self, session: ReaderSession, cc: bytes, start: bytes,
                                        body: bytes) -> None:
        """Whatever the CC and TLV bytes, the tap yields a TapEvent and the reader lives on."""
        tag = Ntag21x("NTAG213")
        tag.load_user_memory((start + body)[:144])
        tag.set_page(3, cc)  # any capability container, including nonsense
        event = session.tap(tag)
        assert event.uid == tag.uid.hex().upper()
        assert event.kind in ("member", "product", "refused")
        if event.kind == "refused":
            assert event.reason
        assert session.thread.is_alive()

    def test_reader_still_reads_after_fuzzing(self, session: ReaderSession) -> None:
        """A genuine card after a run of garbage tags is read normally."""
        for junk in (b"\x03\xff\xff\xff", b"\x03\x10" + b"\xff" * 16, b"\x01\x02"):
            tag = Ntag21x("NTAG213")
            tag.load_user_memory(junk)
            assert session.tap(tag).kind == "refused"
        assert session.tap(cards.member_card("AFTER-FUZZ")).kind == "member"
