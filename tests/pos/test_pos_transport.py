"""SerialEndpoint, SimulatedTill and PtyBridge over real pseudo-terminals."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import serial

from pos_loyalty.errors import LocalProtocolError, SerialLinkError
from pos_loyalty.pos.codec import Frame, encode_frame
from pos_loyalty.pos.link import Hello, Timers
from pos_loyalty.pos.messages import MemberIdentified, Message, TxnStatusRequest
from pos_loyalty.pos.pty import PtyBridge
from pos_loyalty.pos.testing import EchoTerminal
from pos_loyalty.pos.till import SimulatedTill
from pos_loyalty.pos.transport import SerialEndpoint


def wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


@pytest.fixture
def bridge() -> Iterator[PtyBridge]:
    with PtyBridge() as b:
        yield b


MEMBER = MemberIdentified("C-1", "M-1", "Ada", "gold", 120, ("5% off coffee",), 1.5)


class TestRoundTrip:
    def test_request_reaches_terminal_once_and_answer_returns(self, bridge: PtyBridge) -> None:
        """A till commit is delivered to the terminal exactly once and its answer comes back."""
        with EchoTerminal(bridge.terminal_path) as term, \
                SimulatedTill(bridge.till_path, pos_id="POS-7") as till:
            till.wait_link_up()
            quote = till.send_basket("T1", [{"sku": "A", "qty": 2, "unit_price": 250,
                                             "category": "food"}])
            assert quote["type"] == "quote" and quote["total_due"] == 500
            awarded = till.commit("T1")
            assert awarded["type"] == "points.awarded"
            assert (awarded["points"], awarded["repeated"]) == (5, False)
            again = till.commit("T1")
            assert again["repeated"] is True and again["points"] == 5
            assert term.delivered[("txn.commit", "POS-7", "T1")] == 2
            assert term.applied[("txn.commit", "POS-7", "T1")] == 1
            assert term.delivered[("basket.update", "POS-7", "T1")] == 1
            assert till.pending_messages() == []

    def test_unprompted_message_reaches_till(self, bridge: PtyBridge) -> None:
        """A member.identified sent by the terminal lands in the till's inbox unchanged."""
        got: list[Message] = []
        with SerialEndpoint(bridge.terminal_path, got.append, role="terminal") as term, \
                SimulatedTill(bridge.till_path) as till:
            till.wait_link_up()
            term.send(MEMBER)
            assert till.next_message({"member.identified"}) == MEMBER.to_dict()
            with pytest.raises(SerialLinkError):
                till.next_message(timeout=0.2)
        assert got == []

    def test_hello_exchanges_ids(self, bridge: PtyBridge) -> None:
        """After the hello each end knows the other's role and id."""
        states: list[bool] = []
        with SerialEndpoint(bridge.terminal_path, lambda m: None, role="terminal",
                            peer_id="TERM-9", on_link_state=states.append) as term, \
                SimulatedTill(bridge.till_path, pos_id="POS-3") as till:
            till.wait_link_up()
            wait_for(lambda: term.link_up)
            assert term.peer is not None and (term.peer.role, term.peer.id) == ("till", "POS-3")
            assert till.endpoint.peer is not None and till.endpoint.peer.id == "TERM-9"
        assert states == [True, False]


class TestRobustness:
    def test_callback_exception_does_not_stop_reader(self, bridge: PtyBridge,
                                                    caplog: pytest.LogCaptureFixture) -> None:
        """An exception raised by on_message is logged and later messages still arrive."""
        got: list[str] = []

        def handler(msg: Message) -> None:
            assert isinstance(msg, TxnStatusRequest)
            got.append(msg.txn_id)
            if len(got) == 1:
                raise RuntimeError("handler bug")

        with SerialEndpoint(bridge.terminal_path, handler, role="terminal"), \
                SimulatedTill(bridge.till_path) as till:
            till.wait_link_up()
            till.endpoint.send(TxnStatusRequest("P", "1"))
            till.endpoint.send(TxnStatusRequest("P", "2"))
            wait_for(lambda: len(got) == 2)
        assert got == ["1", "2"]
        assert "handler bug" in caplog.text

    def test_invalid_message_is_answered_with_error(self, bridge: PtyBridge) -> None:
        """A well-framed but unknown message is not delivered; the sender gets an error."""
        got: list[Message] = []
        with SerialEndpoint(bridge.terminal_path, got.append, role="terminal"), \
                serial.Serial(bridge.till_path, timeout=0.1) as raw:
            hello = Hello((1,), 2048, "till", "RAW").to_payload()
            raw.write(encode_frame(Frame("H", 0, hello)))
            raw.write(encode_frame(Frame("D", 0, b'{"type":"txn.teleport"}')))
            seen = b""
            deadline = time.monotonic() + 5
            want = b"\"code\":\"invalid_message\",\"message\":\"unknown message type 'txn.teleport'"
            while want not in seen and time.monotonic() < deadline:
                seen += raw.read(256)
            assert want in seen
        assert got == []

    def test_message_of_the_other_side_is_refused(self, bridge: PtyBridge) -> None:
        """send() refuses a message its side may not send, before anything is written."""
        with SerialEndpoint(bridge.terminal_path, lambda m: None, role="till") as till:
            with pytest.raises(LocalProtocolError, match="not a message from the till"):
                till.send(MEMBER)
            assert till.pending == 0

    def test_exclusive_open(self, bridge: PtyBridge) -> None:
        """A second endpoint on a port already in use fails with SerialLinkError."""
        with SerialEndpoint(bridge.terminal_path, lambda m: None, role="terminal"):
            other = SerialEndpoint(bridge.terminal_path, lambda m: None, role="terminal")
            with pytest.raises(SerialLinkError, match="cannot open"):
                other.start()

    def test_missing_port(self, tmp_path: Any) -> None:
        """Opening a path that does not exist fails with SerialLinkError, not SerialException."""
        ep = SerialEndpoint(str(tmp_path / "nope"), lambda m: None, role="till")
        with pytest.raises(SerialLinkError, match="nope"):
            ep.start()

    def test_send_from_many_threads(self, bridge: PtyBridge) -> None:
        """Concurrent send() calls from several threads each deliver their message once."""
        with EchoTerminal(bridge.terminal_path) as term, \
                SimulatedTill(bridge.till_path) as till:
            till.wait_link_up()

            def worker(k: int) -> None:
                for i in range(10):
                    till.endpoint.send(TxnStatusRequest("P", f"{k}-{i}"))

            threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wait_for(lambda: len(term.messages) == 40)
            assert set(term.delivered.values()) == {1}


FAST = Timers(ack_extra=0.2, ping_idle=0.5)


class TestFaultyWire:
    def test_every_commit_applied_exactly_once(self) -> None:
        """With bytes corrupted and frames dropped and duplicated on the wire, every sale is
        committed exactly once and its points.awarded reaches the till."""
        with PtyBridge(corrupt_rate=0.002, drop_rate=0.03, dup_rate=0.1, seed=7) as bridge, \
                EchoTerminal(bridge.terminal_path, timers=FAST) as term, \
                SimulatedTill(bridge.till_path, pos_id="POS-2", timers=FAST,
                              reply_timeout=2.0) as till:
            till.wait_link_up(timeout=10)
            retries: dict[str, int] = {}
            for i in range(25):
                txn = f"T{i}"
                lines = [{"sku": "S", "qty": 1, "unit_price": 100 * (i + 1), "category": "c"}]
                for attempt in range(5):
                    try:
                        if attempt == 0 or term.delivered[("basket.update", "POS-2", txn)] == 0:
                            till.send_basket(txn, lines)
                        awarded = till.commit(txn)
                        break
                    except SerialLinkError:
                        retries[txn] = retries.get(txn, 0) + 1
                else:
                    raise AssertionError(f"{txn} never committed")
                assert awarded["points"] == i + 1
            faults = bridge.to_till, bridge.to_terminal
        for i in range(25):
            key = ("txn.commit", "POS-2", f"T{i}")
            assert term.applied[key] == 1
            # Link-level duplicates never reach the handler: extra deliveries only come from
            # the till's own retries after a reply timeout.
            assert term.delivered[key] <= 1 + retries.get(f"T{i}", 0)
        assert sum(f.corrupted for f in faults) > 0
        assert sum(f.dropped for f in faults) > 0
        assert sum(f.duplicated for f in faults) > 0
        assert term.endpoint.stats.duplicates + till.endpoint.stats.duplicates > 0


class TestPortLoss:
    def test_survives_port_vanishing_and_reopens(self, tmp_path: Path) -> None:
        """A by-id style symlink whose device disappears: link reported down, and the
        endpoint reopens the same path once a device is back there."""
        by_id = tmp_path / "serial" / "by-id"
        by_id.mkdir(parents=True)
        link = by_id / "usb-FTDI_FT232R_USB_UART_A10K-if00-port0"
        states: list[bool] = []
        first = PtyBridge()
        first.start()
        link.symlink_to(first.terminal_path)
        got: list[Message] = []
        endpoint = SerialEndpoint(str(link), got.append, role="terminal",
                                  on_link_state=states.append, timers=FAST)
        endpoint.start()
        try:
            with SimulatedTill(first.till_path) as till:
                till.wait_link_up()
                till.endpoint.send(TxnStatusRequest("P", "before"))
                wait_for(lambda: len(got) == 1)
            first.close()  # the adapter is unplugged: both ptys vanish ...
            link.unlink()  # ... and udev removes its by-id link
            wait_for(lambda: states[-1:] == [False])
            assert not endpoint.link_up
            with PtyBridge() as second:
                tmp = by_id / "new"
                tmp.symlink_to(second.terminal_path)
                tmp.rename(link)  # udev creates the by-id link for the new device
                with SimulatedTill(second.till_path) as till:
                    till.wait_link_up(timeout=10)
                    wait_for(lambda: endpoint.link_up)
                    till.endpoint.send(TxnStatusRequest("P", "after"))
                    wait_for(lambda: len(got) == 2)
            assert got == [TxnStatusRequest("P", "before"), TxnStatusRequest("P", "after")]
            assert endpoint.reopen_count >= 1
            assert states[:3] == [True, False, True]
        finally:
            endpoint.close()
            first.close()

    def test_silent_till_detected_by_pings(self, bridge: PtyBridge) -> None:
        """A till that stops answering is declared down after 3 missed pings."""
        states: list[bool] = []
        with SerialEndpoint(bridge.terminal_path, lambda m: None, role="terminal",
                            on_link_state=states.append, timers=FAST) as term:
            till = SimulatedTill(bridge.till_path)
            till.start()
            wait_for(lambda: term.link_up)
            till.close()  # port closed; the pty stays, nobody answers
            wait_for(lambda: states[-1:] == [False])
            assert term.stats.pings_sent >= 3


class TestQueue:
    def test_queue_full_while_link_down(self, bridge: PtyBridge) -> None:
        """With no till answering, send() queues up to the limit, then raises SerialLinkError."""
        with SerialEndpoint(bridge.terminal_path, lambda m: None, role="terminal") as term:
            for i in range(256):
                term.send(replace(MEMBER, card_id=f"C-{i}"))
            assert term.pending == 256 and not term.link_up
            with pytest.raises(SerialLinkError, match="queue full"):
                term.send(MEMBER)

    def test_queued_messages_flow_when_till_arrives(self, bridge: PtyBridge) -> None:
        """Messages sent before the till is there are delivered, in order, once it says hello."""
        with SerialEndpoint(bridge.terminal_path, lambda m: None, role="terminal") as term:
            for i in range(3):
                term.send(replace(MEMBER, card_id=f"C-{i}"))
            with SimulatedTill(bridge.till_path) as till:
                got = [till.next_message(timeout=10)["card_id"] for _ in range(3)]
        assert got == ["C-0", "C-1", "C-2"]
