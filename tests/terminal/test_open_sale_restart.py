"""An open sale survives a kill -9 of `pos-loyalty run`: basket, member and redemption."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pos_loyalty.errors import SerialLinkError
from pos_loyalty.nfc.sim.cards import member_card
from pos_loyalty.nfc.sim.emulator import TagEmulator
from pos_loyalty.pos.pty import PtyBridge
from pos_loyalty.pos.till import SimulatedTill
from pos_loyalty.store import LocalStore

ROOT = Path(__file__).resolve().parents[2]
LINES = [{"sku": "BEANS", "qty": 1, "unit_price": 1000, "category": "retail"}]


def start(bridge: PtyBridge, rf: TagEmulator, db: Path, conf: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pos_loyalty", "run", "--simulation", "--config", str(conf),
         "--serial", bridge.terminal_path, "--reader", f"udp:127.0.0.1:{rf.port}", "--db",
         f"sqlite:///{db}", "--demo-members"],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)


def status_after_restart(till: SimulatedTill, txn_id: str) -> dict[str, Any]:
    """txn.status, asked until the restarted terminal answers (as a till would)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return till.status(txn_id)
        except SerialLinkError:
            assert time.monotonic() < deadline, "the terminal never came back"


class TestKillMidSale:
    def test_open_sale_is_restored_and_commits_for_its_member(self, tmp_path: Path) -> None:
        """Ada's quoted sale with a redemption, kill -9, restart: txn.status says open, the
        re-sent basket keeps Ada (no tap needed), and the commit charges the redemption once."""
        db = tmp_path / "terminal.db"
        conf = tmp_path / "terminal.toml"
        conf.write_text(f'[program]\nfile = "{ROOT / "examples/programs/cafe.toml"}"\n')
        with TagEmulator() as rf, PtyBridge() as bridge:
            proc = start(bridge, rf, db, conf)
            try:
                with SimulatedTill(bridge.till_path) as till:
                    till.wait_link_up(timeout=30)
                    rf.present(member_card("C-1001"))
                    assert till.next_message({"member.identified"}, timeout=20)[
                        "member_id"] == "M-1001"
                    rf.remove()
                    assert till.send_basket("T-1", LINES)["member_id"] == "M-1001"
                    quoted = till.redeem("T-1", 100)
                    assert quoted["type"] == "quote", quoted
                    proc.send_signal(signal.SIGKILL)
                    proc.communicate(timeout=20)
                    proc = start(bridge, rf, db, conf)
                    status = status_after_restart(till, "T-1")
                    assert (status["state"], status["points"]) == (
                        "open", quoted["points_total"] - 100)
                    again = till.send_basket("T-1", LINES)  # a 6.3 till: the basket again
                    assert again["member_id"] == "M-1001"
                    assert again["lines"] == quoted["lines"]  # the redemption is still on it
                    awarded = till.commit("T-1")
                    assert (awarded["member_id"], awarded["points"]) == (
                        "M-1001", quoted["points_total"] - 100)
            finally:
                proc.send_signal(signal.SIGTERM)
                _out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert "restored 1 open sale(s)" in err
        store = LocalStore(f"sqlite:///{db}")
        try:
            kinds = sorted((e.kind, e.points) for e in store.ledger("M-1001"))
        finally:
            store.close()
        assert kinds == [("earn", quoted["points_total"]), ("redeem", -100)]
