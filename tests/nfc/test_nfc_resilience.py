"""The Reader keeps reading through reader loss: emulator gone and back, device closed under it."""

from __future__ import annotations

import queue
import threading
import time

import pytest

from pos_loyalty.errors import ReaderError
from pos_loyalty.nfc.cardformat import CardTrust
from pos_loyalty.nfc.demo_keys import demo_trust
from pos_loyalty.nfc.events import TapEvent
from pos_loyalty.nfc.reader import Reader
from pos_loyalty.nfc.sim import cards
from pos_loyalty.nfc.sim.emulator import TagEmulator
from tests.ports import held_udp_port


class RunningReader:
    def __init__(self, path: str) -> None:
        self.events: queue.Queue[TapEvent] = queue.Queue()
        self.states: list[bool] = []
        self.reader = Reader(path, trust=demo_trust(), debounce_s=0.0,
                             on_state=self.states.append)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.reader.run, args=(self.events.put, self.stop))
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


def _tap(emu: TagEmulator, run: RunningReader, card: str) -> tuple[TapEvent, float]:
    started = time.perf_counter()
    emu.present(cards.member_card(card))
    try:
        event = run.events.get(timeout=10)
    finally:
        emu.remove()
    return event, time.perf_counter() - started


class TestReaderLoss:
    def test_emulator_gone_and_back_on_same_port(self) -> None:
        """With the tag side gone the reader keeps polling; when it is back, taps are read."""
        emu = TagEmulator()
        emu.start()
        port = emu.port
        run = RunningReader(emu.path)
        try:
            assert _tap(emu, run, "BEFORE")[0].card_id == "BEFORE"
            emu.close()
            with held_udp_port(port):  # the reader polls an empty port, no one else gets it
                time.sleep(1.5)
                assert run.thread.is_alive()
            emu = TagEmulator(port=port)
            emu.start()
            event, took = _tap(emu, run, "AFTER")
            print(f"first tap after the tag side came back: {took * 1000:.0f} ms")
            assert event.card_id == "AFTER" and event.verified
        finally:
            run.close()
            emu.close()

    def test_device_closed_under_the_loop_is_reopened(self, emulator: TagEmulator) -> None:
        """Closing the open device (as an unplug does) makes the loop reopen it and read on."""
        run = RunningReader(emulator.path)
        try:
            assert _tap(emulator, run, "ONE")[0].card_id == "ONE"
            assert run.reader.opened == 1
            unplugged = time.perf_counter()
            run.reader.reconnect()
            event, _ = _tap(emulator, run, "TWO")
            back = time.perf_counter() - unplugged
            print(f"device closed -> next tap read: {back * 1000:.0f} ms")
            assert event.card_id == "TWO"
            assert run.reader.opened == 2
            assert run.reader.errors >= 1
            assert run.states[:3] == [True, False, True]
        finally:
            run.close()

    def test_device_closed_while_card_held(self, emulator: TagEmulator) -> None:
        """Losing the device during the presence check neither kills the loop nor hangs it."""
        run = RunningReader(emulator.path)
        try:
            tag = cards.member_card("HELD")
            emulator.present(tag)
            assert run.events.get(timeout=10).card_id == "HELD"
            run.reader.reconnect()
            # the card is still on the reopened reader: it is read again (debounce 0)
            assert run.events.get(timeout=10).card_id == "HELD"
            emulator.remove()
            assert _tap(emulator, run, "NEXT")[0].card_id == "NEXT"
            assert run.reader.opened >= 2
        finally:
            run.close()

    def test_repeated_loss(self, emulator: TagEmulator) -> None:
        """Five closes in a row are each survived; reading works at the end."""
        run = RunningReader(emulator.path)
        try:
            for _ in range(5):
                deadline = time.monotonic() + 5
                while not run.reader.is_open and time.monotonic() < deadline:
                    time.sleep(0.01)
                run.reader.reconnect()
                time.sleep(0.2)
            assert _tap(emulator, run, "LAST")[0].card_id == "LAST"
            assert run.reader.opened >= 5
        finally:
            run.close()


class TestOpenAndClose:
    def test_device_closed_when_loop_returns(self, emulator: TagEmulator) -> None:
        """The device is open while running and closed once stop is set."""
        run = RunningReader(emulator.path)
        deadline = time.monotonic() + 5
        while not run.reader.is_open and time.monotonic() < deadline:
            time.sleep(0.01)
        assert run.reader.is_open
        run.close()
        assert not run.reader.is_open
        assert run.states[-1] is False

    def test_missing_reader_retried_until_stopped(self) -> None:
        """A USB reader that is not there is retried quietly, and stop still ends the loop."""
        run = RunningReader("usb:ffff:fffe")
        time.sleep(0.5)
        assert run.thread.is_alive() and run.reader.opened == 0
        run.close()

    @pytest.mark.parametrize("path", ["", "bluetooth", "pcsc-ish:0", "udpx:1"])
    def test_unusable_path_is_reader_error(self, path: str) -> None:
        """A path nfcpy can never open is refused at construction with ReaderError."""
        with pytest.raises(ReaderError, match="reader path"):
            Reader(path, trust=CardTrust())
