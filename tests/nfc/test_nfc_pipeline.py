"""The reader pipeline on its own: scripted reads from a stand-in source, an injected clock.

Whatever the device (nfcpy, PC/SC), the Reader classifies, asks once more about a doubtful
read, debounces from when the card was last seen, and survives its tap handler.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from pos_loyalty.nfc.cardformat import member_card_ndef
from pos_loyalty.nfc.demo_keys import DEMO_ISSUER, demo_trust
from pos_loyalty.nfc.events import TapEvent
from pos_loyalty.nfc.reader import Reader
from pos_loyalty.nfc.source import LEGACY_TAG_TYPE, TagRead, TagSink

UID = bytes.fromhex("04112233445566")
OTHER = bytes.fromhex("04AABBCCDDEEFF")


def good(uid: bytes = UID) -> TagRead:
    return TagRead(uid, "NTAG213", member_card_ndef("C-1", uid, DEMO_ISSUER))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Script:
    """A stand-in TagSource: plays reads, presence and clock steps into the sink."""

    clock: Clock
    steps: list[TagRead | str | float]
    answers: list[bool] = field(default_factory=list)
    path: str = "script"
    opened: int = 0
    errors: int = 0
    is_open: bool = False

    def run(self, sink: TagSink, stop: threading.Event) -> None:
        for step in self.steps:
            if isinstance(step, TagRead):
                self.answers.append(sink.on_read(step))
            elif step == "present":
                sink.on_present()
            else:
                assert isinstance(step, float)
                self.clock.now += step

    def reconnect(self) -> None:
        pass


def play(*steps: TagRead | str | float, debounce_s: float = 1.0,
         legacy: bool = False) -> tuple[list[TapEvent], list[bool], Reader]:
    clock = Clock()
    reader = Reader("udp:127.0.0.1:9", trust=demo_trust(accept_legacy_uid=legacy),
                    debounce_s=debounce_s, clock=clock)
    script = Script(clock, list(steps))
    reader.source = script
    events: list[TapEvent] = []
    reader.run(events.append, threading.Event())
    return events, script.answers, reader


class TestDebounce:
    def test_same_card_within_debounce_is_one_tap(self) -> None:
        """The card read again 0.5 s after it was last seen is not reported again."""
        events, _, _ = play(good(), "present", 0.5, good())
        assert [e.card_id for e in events] == ["C-1"]

    def test_debounce_counts_from_last_seen(self) -> None:
        """A card held 5 s and put back at once is still one tap; 1.5 s later it is new."""
        events, _, _ = play(good(), 5.0, "present", 0.2, good(), 1.5, good())
        assert [e.card_id for e in events] == ["C-1", "C-1"]

    def test_another_card_is_reported_at_once(self) -> None:
        """Debouncing is per card: a different UID right after is its own tap."""
        events, _, _ = play(good(), good(OTHER))
        assert [e.uid for e in events] == [UID.hex().upper(), OTHER.hex().upper()]

    def test_no_uid_is_never_debounced(self) -> None:
        """Reads that gave no UID (a PC/SC reader that could not get it) are each reported."""
        blank = TagRead(b"", LEGACY_TAG_TYPE, None)
        events, _, _ = play(blank, blank)
        assert len(events) == 2


class TestSecondRead:
    def test_refusal_is_read_once_more(self) -> None:
        """A refused first read asks the source for another; the second is reported."""
        forged = TagRead(UID, "NTAG213", member_card_ndef("C-1", OTHER, DEMO_ISSUER))
        events, answers, _ = play(forged, forged)
        assert answers == [False, True]
        assert len(events) == 1 and events[0].kind == "refused"

    def test_second_read_can_clear_a_doubt(self) -> None:
        """A first read that broke off and a good second read give one verified member."""
        moved = TagRead(UID, "NTAG213", None, failed="card moved away during reading")
        events, answers, _ = play(moved, good())
        assert answers == [False, True]
        assert [(e.kind, e.verified) for e in events] == [("member", True)]

    def test_failed_twice_says_tap_again(self) -> None:
        """Two failed reads are reported as a refusal asking to tap again."""
        moved = TagRead(UID, "NTAG213", None, failed="card moved away during reading")
        events, _, _ = play(moved, moved)
        assert events[0].reason == "card moved away during reading: tap again"

    def test_legacy_cards_are_not_read_twice(self) -> None:
        """A UID-only card cannot read differently: its refusal is reported at once."""
        events, answers, _ = play(TagRead(bytes(4), LEGACY_TAG_TYPE, None))
        assert answers == [True] and events[0].kind == "refused"


class TestHandler:
    def test_failing_handler_does_not_stop_the_pipeline(self) -> None:
        """A tap handler that raises is counted and the next tap is still delivered."""
        clock = Clock()
        reader = Reader("udp:127.0.0.1:9", trust=demo_trust(), debounce_s=0.0, clock=clock)
        reader.source = Script(clock, [good(), good(OTHER)])
        seen: list[str] = []

        def handler(event: TapEvent) -> None:
            seen.append(event.uid)
            if len(seen) == 1:
                raise RuntimeError("till gone")

        reader.run(handler, threading.Event())
        assert len(seen) == 2 and reader.errors == 1 and reader.taps == 2

    def test_heartbeat_follows_the_clock(self) -> None:
        """The heartbeat age is measured on the injected clock."""
        clock = Clock()
        reader = Reader("udp:127.0.0.1:9", trust=demo_trust(), clock=clock)
        clock.now += 7.0
        assert reader.heartbeat_age() == 7.0
        reader.beat()
        assert reader.heartbeat_age() == 0.0
