"""R1: the terminal daemon killed with SIGKILL mid-sale loses and doubles no point.

A real `pos-loyalty run` process serves a till over a pty and an emulated card over nfcpy
udp; a killer thread SIGKILLs it at random moments and starts it again. The till does what a
till does after a restart: asks `txn.status`, and repeats the basket and the commit when the
terminal never saw them. At the end every sale is in the local ledger once, and once in
central after the background sync.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pos_loyalty.errors import SerialLinkError
from pos_loyalty.nfc.sim.cards import member_card
from pos_loyalty.nfc.sim.emulator import TagEmulator
from pos_loyalty.pos.pty import PtyBridge
from pos_loyalty.pos.till import SimulatedTill
from pos_loyalty.sync.client import SyncClient, run_sync
from tests.conftest import Central, TerminalFactory

ROOT = Path(__file__).resolve().parents[2]
KILLS = 4
AFTER = 3  # sales rung up after the last restart, on the daemon that survived
SETTLE_S = 0.4  # nfcpy needs ~0.3 s to see a card leave before the next tap


class DaemonProcess:
    """`pos-loyalty run` as a child process that can be killed and started again."""

    def __init__(self, args: list[str]) -> None:
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, "-m", "pos_loyalty", "run", *self.args],
                                     env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.starts += 1

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)

    def ensure_dead(self) -> None:
        """Never leave a daemon holding a pty behind, whatever happened in the test."""
        if self.proc is not None and self.proc.poll() is None:
            self.kill()


def ring_up(till: SimulatedTill, rf: TagEmulator, txn_id: str,
            lines: list[dict[str, Any]]) -> dict[str, Any]:
    """One sale as a till rings it up, retried through terminal restarts until answered."""
    for _attempt in range(30):
        try:
            till.pending_messages()  # drop tap answers left over from before a restart
            status = till.status(txn_id)
            if status["state"] != "committed":
                time.sleep(SETTLE_S)
                rf.present(member_card("C-1"))
                try:
                    till.next_message({"member.identified"}, timeout=5)
                finally:
                    rf.remove()
                quote = till.send_basket(txn_id, lines)
                if quote["type"] != "quote" or quote["member_id"] != "M-1":
                    continue  # a stale tap answer was taken: the sale is not Ann's yet
            reply = till.commit(txn_id)
            if reply["type"] == "points.awarded":
                return reply
        except SerialLinkError:
            time.sleep(0.2)  # the terminal is restarting: the link comes back with a hello
    raise AssertionError(f"sale {txn_id} never completed")


@pytest.mark.parametrize("central_url", ["sqlite"], indirect=True)
@pytest.mark.slow(seconds=25)
class TestKillNineDuringSales:
    def test_no_point_lost_or_doubled(self, central: Central, terminals: TerminalFactory,
                                      tmp_path: Path, request: pytest.FixtureRequest) -> None:
        """Sales survive SIGKILLs of the daemon: one ledger event each, locally and centrally."""
        central.store.add_member("M-1", "Ann", card_id="C-1")
        central.store.adjust_points("M-1", 50, "opening balance")
        term = terminals()
        with SyncClient(term.server_url, term.credential) as client:
            assert run_sync(term.local, client).ok  # bootstrap: the member reaches the till
        conf = tmp_path / "terminal.toml"
        conf.write_text("[cards]\nsimulation = true\n[sync]\ninterval_s = 0.5\n")
        rng = random.Random(20261123)

        def basket(i: int) -> list[dict[str, Any]]:
            return [{"sku": f"SKU-{i}", "qty": 1 + i % 3, "unit_price": 150 + 37 * i,
                     "category": "misc"}]

        baskets: list[list[dict[str, Any]]] = []
        answers: list[dict[str, Any]] = []
        with TagEmulator() as rf, PtyBridge() as bridge:
            daemon = DaemonProcess(["--config", str(conf), "--serial", bridge.terminal_path,
                                    "--reader", f"udp:127.0.0.1:{rf.port}",
                                    "--db", term.local.url])
            daemon.start()
            request.addfinalizer(daemon.ensure_dead)
            done = threading.Event()

            def killer() -> None:
                for _ in range(KILLS):
                    if done.wait(rng.uniform(1.0, 3.0)):
                        return
                    daemon.kill()
                    daemon.start()

            with SimulatedTill(bridge.till_path, pos_id="POS-R1") as till:
                till.wait_link_up(timeout=30)
                chaos = threading.Thread(target=killer)
                chaos.start()
                try:
                    # sales follow each other through every kill, then AFTER more are rung
                    # up on the daemon that was started last
                    after = 0
                    while after < AFTER:
                        if not chaos.is_alive():
                            after += 1
                        baskets.append(basket(len(baskets)))
                        answers.append(ring_up(till, rf, f"T{len(answers):03d}", baskets[-1]))
                finally:
                    done.set()
                    chaos.join()
                sales = len(baskets)
                deadline = time.monotonic() + 60
                while (central.store.ledger_count(term.terminal_id) < sales
                       and time.monotonic() < deadline):
                    time.sleep(0.2)
            assert daemon.stop() == 0
        assert daemon.starts == 1 + KILLS, "the daemon was not killed during the sales"

        points = [a["points"] for a in answers]
        assert points == [b[0]["qty"] * b[0]["unit_price"] // 100 for b in baskets]
        events = term.local.ledger("M-1")
        assert sorted(e.txn_ref for e in events) == [f"POS-R1/T{i:03d}" for i in range(sales)]
        assert [e.points for e in sorted(events, key=lambda e: e.txn_ref)] == points
        seqs = sorted(e.terminal_seq for e in term.local.ledger())
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # gap-free
        record = term.local.find_by_card("C-1")
        assert record is not None and record.balance == 50 + sum(points)
        assert central.store.ledger_count(term.terminal_id) == sales
        assert central.store.balance("M-1") == 50 + sum(points)
