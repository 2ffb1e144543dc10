"""The daemon's worker survives what the till link throws at it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from pos_loyalty.config import TerminalConfig
from pos_loyalty.nfc.events import TapEvent
from pos_loyalty.nfc.sim.emulator import TagEmulator
from pos_loyalty.pos.pty import PtyBridge
from pos_loyalty.pos.till import SimulatedTill
from pos_loyalty.terminal.daemon import TerminalDaemon


class TestTillAway:
    def test_full_send_queue_does_not_stop_the_terminal(self, tmp_path: Path) -> None:
        """With no till for hundreds of taps the worker keeps going and serves the till later."""
        with TagEmulator() as rf, PtyBridge() as bridge:
            daemon = TerminalDaemon(TerminalConfig(
                data_dir=tmp_path, reader_path=f"udp:127.0.0.1:{rf.port}",
                serial_port=bridge.terminal_path, debounce_s=0.0, simulation=True))
            daemon.start()
            worker = threading.Thread(target=daemon.run)
            worker.start()
            try:
                for i in range(400):  # more than the link's send queue holds
                    daemon._from_reader(TapEvent("refused", f"04{i:012X}", "NTAG213",
                                                 reason="blank tag"))
                deadline = time.monotonic() + 30
                while daemon._work.qsize() and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert worker.is_alive()
                with SimulatedTill(bridge.till_path) as till:
                    till.wait_link_up(timeout=20)
                    status = till.status("T-after")
                assert status["type"] == "txn.status"
            finally:
                daemon.stop()
                worker.join(timeout=20)
        assert not worker.is_alive()


class TestStoreTrouble:
    def test_tap_with_broken_store_is_refused_with_reason(self, tmp_path: Path) -> None:
        """A member lookup the database refuses becomes a readable refusal, not a crash."""
        import sqlite3

        from pos_loyalty.store import LocalStore
        from pos_loyalty.terminal.service import TerminalService

        db = tmp_path / "t.db"
        store = LocalStore(f"sqlite:///{db}")
        store.add_member("M-1", "Ann", card_id="C-1")
        service = TerminalService(store)
        tap = TapEvent("member", "04A1B2C3D4E5F6", "NTAG213", card_id="C-1", verified=True)
        assert service.on_tap(tap)["type"] == "member.identified"
        with sqlite3.connect(db) as conn:
            conn.execute("DROP TABLE cards")
        answer = service.on_tap(tap)
        store.close()
        assert answer["type"] == "card.refused"
        assert "store is unavailable" in answer["reason"]
