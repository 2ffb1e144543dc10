"""A running `pos-loyalty run` takes up a program published at central without a restart:
real central over HTTP, the daemon as its own process, a real pty to the reference till,
nfcpy over udp."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pos_loyalty.nfc.sim.cards import member_card
from pos_loyalty.nfc.sim.emulator import TagEmulator
from pos_loyalty.pos.pty import PtyBridge
from pos_loyalty.pos.till import SimulatedTill
from pos_loyalty.sync.client import SyncClient, run_sync
from tests.conftest import Central, TerminalFactory

ROOT = Path(__file__).resolve().parents[2]
TRIPLE = '[program]\nname = "Triple"\n\n[[rule]]\nid = "base"\nkind = "earn"\n' \
         'label = "3 pts per 1.00"\npoints = 3\nper = 100\n'
LINES = [{"sku": "A", "qty": 1, "unit_price": 1000, "category": "x"}]


def quote_points(till: SimulatedTill, rf: TagEmulator, txn: str) -> dict[str, object]:
    """Tap the member card, send a basket of 10.00, return the quote."""
    rf.present(member_card("C-1"))
    got = till.next_message({"member.identified", "member.unknown", "card.refused"}, timeout=20)
    assert got["type"] == "member.identified", got
    rf.remove()
    return till.send_basket(txn, LINES)


@pytest.mark.slow(seconds=10)
@pytest.mark.parametrize("central_url", ["sqlite"], indirect=True)
def test_published_program_reaches_a_running_daemon(central: Central,
                                                    terminals: TerminalFactory,
                                                    tmp_path: Path) -> None:
    """Quotes run the built-in program, then central publishes one for the store: the next
    sale is quoted under it, with no restart, and the log names the program and version."""
    central.store.add_member("M-1", "Ann", card_id="C-1")
    t = terminals("S1", name="terminal")
    with SyncClient(t.server_url, t.credential) as client:
        assert run_sync(t.local, client).ok  # the member is on the terminal before the tap
    db = str(t.local.engine.url)
    t.local.close()
    cfg = tmp_path / "terminal.toml"
    cfg.write_text(f'[terminal]\ndata_dir = "{tmp_path}"\n[sync]\ninterval_s = 0.3\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with TagEmulator() as rf, PtyBridge() as bridge:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pos_loyalty", "run", "--simulation", "--config", str(cfg),
             "--serial", bridge.terminal_path, "--reader", f"udp:127.0.0.1:{rf.port}",
             "--db", db], env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            with SimulatedTill(bridge.till_path, pos_id="POS-1") as till:
                till.wait_link_up(timeout=20)
                before = quote_points(till, rf, "T1")
                assert before["points_total"] == 10, before
                till.commit("T1")
                central.store.publish_program(TRIPLE, stores=("S1",))
                deadline = time.monotonic() + 20
                n = 2
                while True:
                    after = quote_points(till, rf, f"T{n}")
                    if after["points_total"] == 30 or time.monotonic() > deadline:
                        break
                    till.void(f"T{n}")
                    n += 1
                    time.sleep(0.3)
                assert after["points_total"] == 30, after
                assert after.get("program") == {"name": "Triple", "version": 1}, after
                deadline = time.monotonic() + 10  # the next round's heartbeat says so too
                while time.monotonic() < deadline:
                    health = central.store.terminal_health(t.terminal_id)
                    if health.program_version == 1:
                        break
                    time.sleep(0.2)
                assert (health.program_name, health.program_version) == ("Triple", 1)
                assert (health.reader_state, health.till_state) == ("ok", "up")
            proc.send_signal(signal.SIGTERM)
            _out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, err
    assert "program now Triple v1" in err
