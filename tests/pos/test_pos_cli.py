"""``pos-loyalty sim pos`` and ``pos-loyalty pos-check`` over real ptys."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pos_loyalty.pos.check import ConformanceChecker
from pos_loyalty.pos.codec import NEED_DATA, Frame, FrameDecoder, FrameError, encode_frame
from pos_loyalty.pos.pty import PtyBridge
from pos_loyalty.pos.testing import EchoTerminal
from pos_loyalty.pos.till import SimulatedTill

ROOT = Path(__file__).parents[2]


def cli(*args: str, stdin: str | None = None, timeout: float = 60
        ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "pos_loyalty", *args], input=stdin,
                          capture_output=True, text=True, env=env, timeout=timeout,
                          check=False)


SALE = """\
# one sale, checked as it goes
line 4006381333931 2 250 bakery
expect type=quote total_due=500 points_total=5
commit
expect type=points.awarded points=5 repeated=false
commit
expect repeated=true
status
expect state=committed
refund T-0001 R-1 4006381333931:1
expect type=points.awarded points=-5
"""


class TestSimPos:
    def test_script_runs_a_sale(self, tmp_path: Path) -> None:
        """A scripted sale reaches the terminal, commits once and all expectations hold."""
        script = tmp_path / "sale.txt"
        script.write_text(SALE)
        with PtyBridge() as bridge, EchoTerminal(bridge.terminal_path) as term:
            proc = cli("sim", "pos", bridge.till_path, "--script", str(script),
                       "--pos-id", "LANE-3")
            assert proc.returncode == 0, proc.stderr
            assert term.applied[("txn.commit", "LANE-3", "T-0001")] == 1
            assert term.delivered[("txn.commit", "LANE-3", "T-0001")] == 2
        assert "quote T-0001: total due 5.00" in proc.stdout
        assert "(repeated, nothing changed)" in proc.stdout
        assert proc.stdout.count("   ok") == 5
        assert "Traceback" not in proc.stderr

    def test_commands_on_stdin_and_member_tap(self) -> None:
        """Piped commands work like a script, and a tap on the terminal shows on the till."""
        with PtyBridge() as bridge, EchoTerminal(bridge.terminal_path) as term:
            def tap() -> None:
                deadline = time.monotonic() + 20
                while not term.endpoint.link_up and time.monotonic() < deadline:
                    time.sleep(0.02)
                time.sleep(0.3)
                term.endpoint.send({"type": "member.identified", "card_id": "C-9",
                                    "member_id": "M-9", "name": "Grace", "tier": None,
                                    "balance": 42, "discounts": [], "tap_ms": 2.5})
            threading.Thread(target=tap, daemon=True).start()
            proc = cli("sim", "pos", bridge.till_path,
                       stdin="wait member.identified 20\nexpect name=Grace balance=42\n")
        assert proc.returncode == 0, proc.stderr
        assert "member Grace, 42 points" in proc.stdout

    def test_failed_expectation_exits_1(self, tmp_path: Path) -> None:
        """A failing expect stops the script with exit 1 and names the file and line."""
        script = tmp_path / "bad.txt"
        script.write_text("line A 1 100\nexpect total_due=999\nline B 1 1\n")
        with PtyBridge() as bridge, EchoTerminal(bridge.terminal_path) as term:
            proc = cli("sim", "pos", bridge.till_path, "--script", str(script))
            assert term.delivered[("basket.update", "POS-1", "T-0001")] == 1
        assert proc.returncode == 1
        assert f"{script}:2: expected total_due=999, got 100" in proc.stderr
        assert "Traceback" not in proc.stderr

    def test_unknown_command_is_usage_error(self, tmp_path: Path) -> None:
        """An unknown command in a script is a usage error (exit 2) naming the line."""
        script = tmp_path / "typo.txt"
        script.write_text("# comment\ncomit\n")
        with PtyBridge() as bridge, EchoTerminal(bridge.terminal_path):
            proc = cli("sim", "pos", bridge.till_path, "--script", str(script))
        assert proc.returncode == 2
        assert ":2: unknown command 'comit'" in proc.stderr

    def test_missing_port(self, tmp_path: Path) -> None:
        """A port that does not exist gives one clear line and exit 1."""
        proc = cli("sim", "pos", str(tmp_path / "ttyUSB9"))
        assert proc.returncode == 1
        assert "cannot open serial port" in proc.stderr
        assert "Traceback" not in proc.stderr


class BrokenTill:
    """A careless till: ACKs every frame it can parse, never NAKs, never says hello."""

    def __init__(self, path: str) -> None:
        import serial

        self.port = serial.Serial(path, timeout=0.05)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        dec = FrameDecoder()
        while not self.stop.is_set():
            dec.receive_data(self.port.read(256))
            while True:
                try:
                    frame = dec.next_event()
                except FrameError:
                    continue
                if frame is NEED_DATA:
                    break
                if frame.kind in "DHP":
                    self.port.write(encode_frame(Frame("A", frame.seq)))

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.port.close()


class TestPosCheck:
    def test_reference_till_passes(self) -> None:
        """The reference till breaks no rule: every check passes or is skipped."""
        said: list[str] = []
        prompt = threading.Event()

        def say(text: str) -> None:
            said.append(text)
            if text.startswith("ring up a sale"):
                prompt.set()

        with PtyBridge() as bridge, SimulatedTill(bridge.till_path, pos_id="VENDOR") as till:
            def cashier() -> None:
                if prompt.wait(60):
                    till.send_basket("S-1", [{"sku": "A", "qty": 1, "unit_price": 100,
                                              "category": "x"}])
                    till.commit("S-1")
            worker = threading.Thread(target=cashier, daemon=True)
            worker.start()
            results = ConformanceChecker(bridge.terminal_path, hello_wait=10, sale_wait=30,
                                         say=say).run()
            worker.join(timeout=30)
        failed = [r for r in results if r.status != "PASS"]
        assert failed == [], "\n".join(said)
        assert len(results) >= 15

    @pytest.mark.timeout(120)
    def test_broken_till_fails_with_exit_1(self) -> None:
        """A till that never NAKs and never says hello is reported, rule by rule, exit 1."""
        with PtyBridge() as bridge:
            broken = BrokenTill(bridge.till_path)
            try:
                proc = cli("pos-check", bridge.terminal_path, "--hello-wait", "0.5",
                           "--sale-wait", "0.5")
            finally:
                broken.close()
        assert proc.returncode == 1, proc.stdout
        out = proc.stdout
        assert "FAIL  answers a hello request with a hello reply" in out
        assert "FAIL  NAKs a frame with a bad CRC: no answer" in out
        assert "FAIL  NAKs a data frame out of sequence (seq)" in out
        assert "PASS  answers a ping with an ACK of the same number" in out
        assert "SKIP  sends a hello request when it starts" in out
        assert "protocol rule(s) broken" in proc.stderr
