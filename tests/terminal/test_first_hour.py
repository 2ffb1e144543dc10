"""What a newcomer meets in the first hour: names, speeds, a sale without a card, silence."""

from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from pos_loyalty.config import TerminalConfig
from pos_loyalty.nfc.sim.emulator import TagEmulator
from pos_loyalty.pos.cli import pos_check, sim_pos
from pos_loyalty.pos.messages import BasketItem, BasketUpdate, PointsAwarded, QuoteReply, TxnCommit
from pos_loyalty.pos.pty import PtyBridge
from pos_loyalty.pos.till import SimulatedTill
from pos_loyalty.store import LocalStore
from pos_loyalty.terminal import daemon as daemon_module
from pos_loyalty.terminal.cli import run
from pos_loyalty.terminal.daemon import TerminalDaemon
from pos_loyalty.terminal.service import TerminalService

DOC = Path(__file__).resolve().parents[2] / "docs" / "pos-protocol.md"


def default_of(command: object, name: str) -> object:
    params = {p.name: p for p in command.params}  # type: ignore[attr-defined]
    return params[name].default


class TestLineSpeed:
    def test_documented_default_is_what_every_command_uses(self) -> None:
        """The protocol page's default speed is the terminal's, sim pos's and pos-check's."""
        said = re.search(r"(\d+) baud is the default", DOC.read_text())
        assert said is not None
        baud = int(said.group(1))
        assert baud == TerminalConfig().baudrate == default_of(sim_pos, "baud") \
            == default_of(pos_check, "baud")

    def test_run_takes_a_baud_option(self) -> None:
        """`pos-loyalty run --help` offers --baud."""
        out = CliRunner().invoke(run, ["--help"])
        assert out.exit_code == 0 and "--baud" in out.output and "--log-format" in out.output


class TestSaleWithoutMember:
    def test_quote_and_award_agree_on_no_points(self, tmp_path: Path) -> None:
        """Without a member the quote shows no points, and none are awarded."""
        store = LocalStore(f"sqlite:///{tmp_path / 't.db'}")
        try:
            service = TerminalService(store)
            quote = service.on_message(BasketUpdate("P", "T-1", (BasketItem("A", 1, 300, "x"),)))
            assert isinstance(quote, QuoteReply)
            assert (quote.member_id, quote.points_total) == (None, 0)
            awarded = service.on_message(TxnCommit("P", "T-1"))
            assert isinstance(awarded, PointsAwarded)
            assert (awarded.points, awarded.member_id) == (0, None)
        finally:
            store.close()


class TestLongTexts:
    def test_member_changed_with_long_names_still_answers(self, tmp_path: Path) -> None:
        """Two members with 200-character names make a long member_changed text: it is cut
        to fit the message, not turned into an internal error."""
        from pos_loyalty.nfc.events import TapEvent
        from pos_loyalty.pos.messages import Error

        store = LocalStore(f"sqlite:///{tmp_path / 't.db'}")
        try:
            store.add_member("M-A", "A" * 200, card_id="C-A")
            store.add_member("M-B", "B" * 200, card_id="C-B")
            service = TerminalService(store)
            for card in ("C-A", "C-B"):
                if card == "C-B":
                    service.on_message(BasketUpdate("P", "T-1", (BasketItem("X", 1, 100, "x"),)))
                service.on_tap(TapEvent("member", "04A1B2C3D4E5F6", "NTAG213", card_id=card,
                                        verified=True))
            answer = service.on_message(TxnCommit("P", "T-1"))
            assert isinstance(answer, Error) and answer.code == "member_changed"
            assert len(answer.message) <= 500 and answer.message.endswith("...")
        finally:
            store.close()


class TestTerminalIdentity:
    def test_enrolled_terminal_says_its_assigned_id(self, tmp_path: Path) -> None:
        """After enrollment the hello and the banner carry central's id, not T-1."""
        db = f"sqlite:///{tmp_path / 'terminal.db'}"
        store = LocalStore(db, terminal_id="T-1")
        store.set_enrollment(server_url="http://127.0.0.1:9", terminal_id="T-0042",
                             store_id="S-01", credential="secret")
        store.close()
        with TagEmulator() as rf, PtyBridge() as bridge:
            daemon = TerminalDaemon(TerminalConfig(
                data_dir=tmp_path, reader_path=f"udp:127.0.0.1:{rf.port}",
                serial_port=bridge.terminal_path, db_url=db, simulation=True))
            assert daemon.terminal_id == "T-0042"
            daemon.start()
            worker = threading.Thread(target=daemon.run)
            worker.start()
            try:
                with SimulatedTill(bridge.till_path) as till:
                    till.wait_link_up(timeout=20)
                    peer = till.endpoint.peer
                    assert peer is not None and peer.id == "T-0042"
            finally:
                daemon.stop()
                worker.join(timeout=20)


class TestTillPresence:
    def test_no_till_yet_then_till_connected(self, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             caplog: pytest.LogCaptureFixture) -> None:
        """With nobody on the port the daemon says so; a till's hello is logged by name."""
        monkeypatch.setattr(daemon_module, "NO_TILL_AFTER_S", 0.3)
        caplog.set_level(logging.INFO, logger="pos_loyalty")
        with TagEmulator() as rf, PtyBridge() as bridge:
            daemon = TerminalDaemon(TerminalConfig(
                data_dir=tmp_path, reader_path=f"udp:127.0.0.1:{rf.port}",
                serial_port=bridge.terminal_path, simulation=True))
            daemon.start()
            worker = threading.Thread(target=daemon.run)
            worker.start()
            try:
                deadline = time.monotonic() + 10
                while "no till on" not in caplog.text and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert f"no till on {bridge.terminal_path} yet" in caplog.text
                with SimulatedTill(bridge.till_path, pos_id="LANE-4") as till:
                    till.wait_link_up(timeout=20)
                    deadline = time.monotonic() + 10
                    while "till connected" not in caplog.text and time.monotonic() < deadline:
                        time.sleep(0.05)
            finally:
                daemon.stop()
                worker.join(timeout=20)
        assert f"till connected on {bridge.terminal_path} (LANE-4)" in caplog.text
