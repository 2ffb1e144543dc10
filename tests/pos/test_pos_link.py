"""The sans-I/O link: hello, stop-and-wait, ACK/NAK, duplicates, timers, with time injected."""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pos_loyalty.errors import LocalProtocolError
from pos_loyalty.pos.codec import NEED_DATA, Frame, FrameDecoder, encode_frame
from pos_loyalty.pos.link import (
    Acked,
    DuplicateIgnored,
    Event,
    FrameRejected,
    Hello,
    Link,
    LinkDown,
    LinkState,
    LinkUp,
    Message,
    PeerNak,
    SendFailed,
    Timers,
)


def events(link: Link) -> list[Event]:
    out: list[Event] = []
    while (ev := link.next_event()) is not NEED_DATA:
        out.append(ev)
    return out


def frames(data: bytes) -> list[Frame]:
    dec = FrameDecoder()
    dec.receive_data(data)
    out = []
    while (f := dec.next_event()) is not NEED_DATA:
        out.append(f)
    return out


def payload(i: int) -> bytes:
    return json.dumps({"type": "txn.status", "pos_id": "P", "txn_id": str(i)}).encode()


@dataclass
class Pair:
    """Two links joined by a simulated wire the test controls."""

    a: Link = field(default_factory=lambda: Link("terminal", "T"))
    b: Link = field(default_factory=lambda: Link("till", "P"))
    now: float = 0.0
    got_a: list[Event] = field(default_factory=list)
    got_b: list[Event] = field(default_factory=list)

    def connect(self) -> None:
        self.a.connect(self.now)
        self.b.connect(self.now)
        self.pump()

    def pump(self, *, drop_to_a: bool = False, drop_to_b: bool = False) -> None:
        """Carry bytes both ways until the wire is quiet."""
        for _ in range(100):
            to_b, to_a = self.a.data_to_send(), self.b.data_to_send()
            if not to_a and not to_b:
                break
            if to_b and not drop_to_b:
                self.b.receive_data(to_b, self.now)
            if to_a and not drop_to_a:
                self.a.receive_data(to_a, self.now)
        self.got_a += events(self.a)
        self.got_b += events(self.b)

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.a.tick(self.now)
        self.b.tick(self.now)


def delivered(evs: list[Event]) -> list[bytes]:
    return [e.payload for e in evs if isinstance(e, Message)]


@pytest.fixture
def pair() -> Pair:
    p = Pair()
    p.connect()
    return p


class TestHello:
    def test_both_sides_come_up(self, pair: Pair) -> None:
        """A hello exchange brings both links up, each knowing the other's role and id."""
        assert pair.a.up and pair.b.up
        assert pair.a.peer is not None and pair.a.peer.id == "P"
        assert pair.b.peer is not None and pair.b.peer.role == "terminal"
        assert any(isinstance(e, LinkUp) for e in pair.got_a)

    def test_one_sided_hello(self) -> None:
        """A peer that only answers hellos (never sends one first) still brings the link up."""
        a, b = Link("terminal"), Link("till")
        a.connect(0.0)
        b.connect(0.0)
        b.data_to_send()  # b's own hello is lost
        b.receive_data(a.data_to_send(), 0.0)
        a.receive_data(b.data_to_send(), 0.0)
        assert a.up and b.up

    def test_hello_resets_counters(self, pair: Pair) -> None:
        """After the peer re-hellos, sequence numbers restart at 00 and data still flows."""
        for i in range(3):
            pair.a.send(payload(i), pair.now)
            pair.pump()
        pair.b = Link("till", "P2")  # the till restarted
        pair.b.connect(pair.now)
        pair.pump()
        assert any(isinstance(e, LinkUp) and e.restarted for e in pair.got_a)
        pair.a.send(payload(9), pair.now)
        wire = pair.a.data_to_send()
        assert frames(wire)[0].seq == 0
        pair.b.receive_data(wire, pair.now)
        pair.pump()
        assert delivered(events(pair.b) + pair.got_b)[-1] == payload(9)

    def test_same_role_refused(self) -> None:
        """Two terminals cannot link: the hello is NAKed with a reason."""
        a, b = Link("terminal"), Link("terminal")
        a.connect(0.0)
        b.connect(0.0)
        b.receive_data(a.data_to_send(), 0.0)
        assert not b.up
        nak = [f for f in frames(b.data_to_send()) if f.kind == "N"]
        assert nak and b"role" in nak[0].payload

    def test_no_common_version(self) -> None:
        """A hello offering only unknown versions is NAKed and the link stays down."""
        b = Link("till")
        b.connect(0.0)
        b.data_to_send()
        hello = json.dumps({"versions": [2, 3], "max_payload": 2048, "role": "terminal",
                            "id": "X"}).encode()
        b.receive_data(encode_frame(Frame("H", 0, hello)), 0.0)
        assert not b.up
        nak = frames(b.data_to_send())
        assert nak[0].kind == "N" and b"no common protocol version" in nak[0].payload

    @pytest.mark.parametrize("bad", [
        b"not json", b"[]", b'{"versions":[],"max_payload":2048,"role":"till"}',
        b'{"versions":[1],"max_payload":true,"role":"till"}',
        b'{"versions":[1],"max_payload":2048,"role":"pos"}',
        b'{"versions":[1],"max_payload":2048,"role":"till","id":5}',
        b"[" * 1020 + b"]" * 1020,
        b'{"versions":[1],"max_payload":2048,"role":"till","id":"x","y":' + b"[" * 980
        + b"]" * 980 + b"}",
    ])
    def test_invalid_hello_refused(self, bad: bytes) -> None:
        """A malformed hello payload is NAKed with the reason."""
        with pytest.raises(ValueError):
            Hello.from_payload(bad)
        link = Link("terminal")
        link.connect(0.0)
        link.data_to_send()
        link.receive_data(encode_frame(Frame("H", 0, bad)), 0.0)
        assert [f.kind for f in frames(link.data_to_send())] == ["N"]
        assert not link.up

    def test_deeply_nested_nak_is_still_a_nak(self, pair: Pair) -> None:
        """A NAK whose payload nests 1,020 arrays makes the sender retransmit, nothing worse."""
        pair.a.send(payload(1), pair.now)
        out = frames(pair.a.data_to_send())
        assert [f.kind for f in out] == ["D"]
        pair.a.receive_data(encode_frame(Frame("N", out[0].seq, b"[" * 1020 + b"]" * 1020)),
                            pair.now)
        assert [f.payload for f in frames(pair.a.data_to_send())] == [out[0].payload]

    def test_data_before_hello_refused(self) -> None:
        """A data frame before any hello is NAKed, not delivered."""
        link = Link("terminal")
        link.connect(0.0)
        link.data_to_send()
        link.receive_data(encode_frame(Frame("D", 0, payload(1))), 0.0)
        assert not any(isinstance(e, Message) for e in events(link))
        nak = frames(link.data_to_send())[0]
        assert json.loads(nak.payload) == {"code": "nohello",
                                           "reason": "hello required before data"}

    def test_hello_retried_with_backoff(self) -> None:
        """Unanswered hellos are repeated at growing intervals, capped."""
        link = Link("terminal", timers=Timers(hello_backoff_max=10.0))
        link.connect(0.0)
        times = [0.0]
        link.data_to_send()
        now = 0.0
        while now < 60:
            deadline = link.next_deadline()
            assert deadline is not None
            now = deadline
            link.tick(now)
            if link.data_to_send():
                times.append(now)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert gaps[0] == pytest.approx(gaps[1])
        assert max(gaps) == pytest.approx(10.0)
        assert all(y >= x - 1e-9 for x, y in itertools.pairwise(gaps))

    def test_receive_before_connect(self) -> None:
        """Feeding a link that was never connected is a LocalProtocolError."""
        with pytest.raises(LocalProtocolError, match="connect"):
            Link("till").receive_data(b"x", 0.0)


class TestStopAndWait:
    def test_delivered_once_and_acked(self, pair: Pair) -> None:
        """A message is delivered once and the sender sees the ACK."""
        pair.a.send(payload(1), pair.now)
        pair.pump()
        assert delivered(pair.got_b) == [payload(1)]
        assert [e.seq for e in pair.got_a if isinstance(e, Acked)] == [0]

    def test_one_outstanding_at_a_time(self, pair: Pair) -> None:
        """Queued messages wait for the previous ACK; the second frame follows it."""
        pair.a.send(payload(1), pair.now)
        pair.a.send(payload(2), pair.now)
        assert [f.seq for f in frames(pair.a.data_to_send())] == [0]
        assert pair.a.pending == 2

    def test_lost_ack_resent_not_redelivered(self, pair: Pair) -> None:
        """A lost ACK leads to a resend that is re-ACKed but not delivered twice."""
        pair.a.send(payload(1), pair.now)
        pair.pump(drop_to_a=True)
        pair.advance(1.1)
        pair.pump()
        assert delivered(pair.got_b) == [payload(1)]
        assert any(isinstance(e, DuplicateIgnored) for e in pair.got_b)
        acked = [e for e in pair.got_a if isinstance(e, Acked)]
        assert acked and acked[0].transmissions == 2

    def test_ack_wait_includes_wire_time(self) -> None:
        """The ACK timer is the frame's wire time plus 1 s: slower lines wait longer."""
        waits = []
        for baud in (9600, 115200):
            link = Link("terminal", baudrate=baud)
            peer = Link("till")
            link.connect(0.0)
            peer.connect(0.0)
            peer.receive_data(link.data_to_send(), 0.0)
            link.receive_data(peer.data_to_send(), 0.0)
            link.send(b"x" * 1000, 0.0)
            waits.append(link.next_deadline())
        assert waits[0] == pytest.approx(1.0 + 1014 * 10 / 9600)
        assert waits[1] == pytest.approx(1.0 + 1014 * 10 / 115200)

    def test_corrupt_frame_nakked_and_resent(self, pair: Pair) -> None:
        """A damaged data frame is NAKed with the reason and the resend is delivered."""
        pair.a.send(payload(1), pair.now)
        wire = bytearray(pair.a.data_to_send())
        wire[15] ^= 0x01
        pair.b.receive_data(bytes(wire), pair.now)
        nak = frames(pair.b.data_to_send())
        assert nak[0].kind == "N" and nak[0].payload == b'{"code":"crc"}'
        pair.a.receive_data(encode_frame(nak[0]), pair.now)
        pair.pump()
        assert delivered(pair.got_b) == [payload(1)]
        assert PeerNak(0, "crc") in pair.got_a
        assert any(isinstance(e, FrameRejected) for e in events(pair.b) + pair.got_b)

    def test_damaged_ack_triggers_immediate_resend(self, pair: Pair) -> None:
        """A damaged frame arriving while we wait for an ACK makes us resend at once."""
        pair.a.send(payload(1), pair.now)
        pair.b.receive_data(pair.a.data_to_send(), pair.now)
        ack = bytearray(pair.b.data_to_send())
        ack[-2] ^= 0x04
        pair.a.receive_data(bytes(ack), pair.now)
        out = frames(pair.a.data_to_send())
        assert [f.kind for f in out] == ["D"]  # an ACK-looking frame is not NAKed

    def test_gives_up_after_three_unanswered_transmissions(self, pair: Pair) -> None:
        """With every ACK lost the frame is sent 3 times, reported failed, and the link
        restarts with a hello."""
        pair.a.send(payload(1), pair.now)
        sent = len(frames(pair.a.data_to_send()))
        for _ in range(3):
            pair.advance(1.1)
            sent += len([f for f in frames(pair.a.data_to_send()) if f.kind == "D"])
        evs = events(pair.a)
        assert sent == 3
        assert any(isinstance(e, SendFailed) and e.payload == payload(1) for e in evs)
        assert any(isinstance(e, LinkDown) for e in evs)
        assert pair.a.state is LinkState.HELLO_SENT
        assert pair.a.pending == 0

    def test_out_of_order_nakked(self, pair: Pair) -> None:
        """A data frame with an unexpected sequence number is NAKed and not delivered."""
        pair.b.receive_data(encode_frame(Frame("D", 5, payload(5))), pair.now)
        out = frames(pair.b.data_to_send())
        assert out[0].kind == "N" and json.loads(out[0].payload) == {
            "code": "seq", "reason": "sequence 05 out of order, expected 00"}
        assert delivered(events(pair.b)) == []

    def test_sequence_wraps(self, pair: Pair) -> None:
        """More than 256 messages go through in order across the FF -> 00 wrap."""
        for i in range(300):
            pair.a.send(payload(i), pair.now)
            pair.pump()
        assert delivered(pair.got_b) == [payload(i) for i in range(300)]

    def test_queue_bound(self) -> None:
        """The send queue is bounded: beyond max_queue, send() refuses."""
        link = Link("terminal", max_queue=3)
        link.connect(0.0)
        for i in range(3):
            link.send(payload(i), 0.0)
        with pytest.raises(LocalProtocolError, match="queue full"):
            link.send(payload(4), 0.0)

    def test_oversized_message_refused(self, pair: Pair) -> None:
        """A message longer than the peer's max payload cannot be queued."""
        with pytest.raises(LocalProtocolError, match="exceeds"):
            pair.a.send(b"x" * 2049, pair.now)

    def test_inter_byte_gap(self, pair: Pair) -> None:
        """A frame that stops arriving for more than 200 ms is dropped and NAKed."""
        pair.a.send(payload(1), pair.now)
        wire = pair.a.data_to_send()
        pair.b.receive_data(wire[:10], pair.now)
        pair.advance(0.1)
        assert pair.b.data_to_send() == b""
        pair.advance(0.15)
        nak = frames(pair.b.data_to_send())
        assert nak and nak[0].kind == "N" and nak[0].payload == b'{"code":"gap"}'


class TestPings:
    def test_ping_after_idle(self, pair: Pair) -> None:
        """After 10 s without traffic a ping is sent and the peer answers with an ACK."""
        pair.advance(9.9)
        assert pair.a.data_to_send() == b""
        pair.advance(0.2)
        wire = pair.a.data_to_send()
        ping = frames(wire)
        assert [f.kind for f in ping] == ["P"]
        pair.b.receive_data(wire, pair.now)
        answers = [f for f in frames(pair.b.data_to_send()) if f.kind == "A"]
        assert [f.seq for f in answers] == [ping[0].seq]

    def test_link_down_after_three_missed_pings(self, pair: Pair) -> None:
        """A silent peer is declared down after 3 unanswered pings, then hellos are retried."""
        pings = 0
        for _ in range(40):
            pair.advance(0.5)
            pings += sum(1 for f in frames(pair.a.data_to_send()) if f.kind == "P")
            if not pair.a.up:
                break
        assert pings == 3
        assert any(isinstance(e, LinkDown) and "3 pings" in e.reason for e in events(pair.a))

    def test_answered_pings_keep_link_up(self, pair: Pair) -> None:
        """A peer that answers pings keeps the link up indefinitely."""
        for _ in range(100):
            pair.advance(0.5)
            pair.pump()
        assert pair.a.up and pair.b.up
        assert pair.a.stats.pings_sent > 0


@st.composite
def fault_plans(draw: st.DrawFn) -> tuple[int, float, float, float, int]:
    return (draw(st.integers(1, 40)), draw(st.floats(0, 0.3)), draw(st.floats(0, 0.3)),
            draw(st.floats(0, 0.01)), draw(st.integers(0, 2**32)))


class TestFaultyWire:
    @given(fault_plans())
    @settings(max_examples=60, deadline=None)
    def test_exactly_once_under_faults(self, plan: tuple[int, float, float, float, int]) -> None:
        """Frames dropped, duplicated or corrupted on the wire: every message is delivered in
        order and at most once, or reported failed to the sender."""
        n, drop, dup, corrupt, seed = plan
        rng = random.Random(seed)
        a, b = Link("terminal"), Link("till")
        now = 0.0
        a.connect(now)
        b.connect(now)
        got_a: list[Event] = []
        got_b: list[Event] = []

        def carry(data: bytes) -> bytes:
            if not data or rng.random() < drop:
                return b""
            buf = bytearray(data)
            for i in range(len(buf)):
                if rng.random() < corrupt:
                    buf[i] ^= rng.randrange(1, 256)
            return bytes(buf) * (2 if rng.random() < dup else 1)

        for i in range(n):
            a.send(payload(i), now)
        for _ in range(50_000):
            moved = False
            for src, dst in ((a, b), (b, a)):
                data = carry(src.data_to_send())
                if data:
                    dst.receive_data(data, now)
                    moved = True
            got_a += events(a)
            got_b += events(b)
            if not moved:
                if a.pending == 0:
                    break
                deadline = min(d for d in (a.next_deadline(), b.next_deadline()) if d)
                now = max(now, deadline)
                a.tick(now)
                b.tick(now)
        sent = [payload(i) for i in range(n)]
        got = delivered(got_b)
        failed = [e.payload for e in got_a if isinstance(e, SendFailed)]
        assert a.pending == 0
        assert len(set(got)) == len(got), "a message was delivered twice"
        assert sorted(got, key=sent.index) == got, "messages delivered out of order"
        assert set(sent) <= set(got) | set(failed)


class TestNakBudget:
    def test_nak_retransmissions_bounded(self, pair: Pair) -> None:
        """A frame NAKed again and again is given up after 10 transmissions in all."""
        pair.a.send(payload(1), pair.now)
        sent = len(frames(pair.a.data_to_send()))
        for _ in range(20):
            pair.a.receive_data(encode_frame(Frame("N", 0, b'{"code":"crc"}')), pair.now)
            sent += len([f for f in frames(pair.a.data_to_send()) if f.kind == "D"])
            if pair.a.pending == 0:
                break
        assert sent == 10
        assert any(isinstance(e, SendFailed) for e in events(pair.a))

    def test_naks_do_not_spend_the_silence_budget(self, pair: Pair) -> None:
        """Two NAKs then two timeouts: still retrying, since only 2 transmissions met silence."""
        pair.a.send(payload(1), pair.now)
        pair.a.data_to_send()
        for _ in range(2):
            pair.a.receive_data(encode_frame(Frame("N", 0, b'{"code":"crc"}')), pair.now)
        pair.advance(1.1)
        pair.advance(1.1)
        assert pair.a.pending == 1 and pair.a.up
        pair.advance(1.1)
        assert pair.a.pending == 0 and not pair.a.up


class TestPayloadLimit:
    def test_peer_lower_max_payload(self) -> None:
        """A message queued before the peer announced a smaller max_payload is reported failed,
        later messages still go, and sending a too large one is refused."""
        a = Link("terminal")
        a.connect(0.0)
        a.data_to_send()
        a.send(b"x" * 200, 0.0)
        a.send(b"y" * 50, 0.0)
        small = Link("till", max_payload=100)
        small.connect(0.0)
        a.receive_data(small.data_to_send(), 0.0)
        evs = events(a)
        assert any(isinstance(e, SendFailed) and e.payload == b"x" * 200 for e in evs)
        sent = [f for f in frames(a.data_to_send()) if f.kind == "D"]
        assert [f.payload for f in sent] == [b"y" * 50]
        with pytest.raises(LocalProtocolError, match="maximum of 100"):
            a.send(b"z" * 101, 0.0)
