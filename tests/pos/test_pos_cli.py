"""``pos-loyalty sim pos`` and ``pos-loyalty pos-check`` over real ptys."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pos_loyalty.pos.check import ConformanceChecker
from pos_loyalty.pos.codec import NEED_DATA, Frame, FrameDecoder, FrameError, encode_frame
from pos_loyalty.pos.console import TillConsole
from pos_loyalty.pos.messages import MemberIdentified
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
                       "--pos-id", "LANE-3", "--txn-prefix", "T-")
            assert proc.returncode == 0, proc.stderr
            assert term.applied[("txn.commit", "LANE-3", "T-0001")] == 1
            assert term.delivered[("txn.commit", "LANE-3", "T-0001")] == 2
        assert "quote T-0001 for no member: total due 5.00" in proc.stdout
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
                term.endpoint.send(MemberIdentified("C-9", "M-9", "Grace", None, 42, (), 2.5))
            threading.Thread(target=tap, daemon=True).start()
            proc = cli("sim", "pos", bridge.till_path,
                       stdin="wait member.identified 20\nexpect name=Grace balance=42\n")
        assert proc.returncode == 0, proc.stderr
        assert "member Grace, 42 points" in proc.stdout

    def test_amount_prices_and_a_new_sale_after_commit(self) -> None:
        """'3.00' is 300 minor units; the line after a commit opens the next sale."""
        with PtyBridge() as bridge, EchoTerminal(bridge.terminal_path) as term:
            proc = cli("sim", "pos", bridge.till_path, "--txn-prefix", "S-",
                       stdin="line A 1 3.00\ncommit\nline B 2 0.5\ncommit\n")
            msgs = list(term.messages)
        assert proc.returncode == 0, proc.stderr
        baskets = [(m["txn_id"], m["lines"][-1]["unit_price"], m["member_id"])
                   for m in msgs if m["type"] == "basket.update"]
        assert baskets == [("S-0001", 300, None), ("S-0002", 50, None)]
        assert term.applied[("txn.commit", "POS-1", "S-0002")] == 1
        assert "-- sale S-0002" in proc.stdout

    def test_bad_price_is_a_usage_error(self) -> None:
        """A price with three decimals is refused with a reason, no request sent."""
        with PtyBridge() as bridge, EchoTerminal(bridge.terminal_path) as term:
            proc = cli("sim", "pos", bridge.till_path, stdin="line A 1 3.005\n")
            assert not term.messages
        assert proc.returncode == 2
        assert "more than two decimals" in proc.stderr

    def test_malformed_coupon_code_is_a_usage_error(self) -> None:
        """A code the protocol refuses (not 10 of 2-9, A-Z) is a usage error naming the
        rule, no request sent; at the prompt the cashier can type it again."""
        with PtyBridge() as bridge, EchoTerminal(bridge.terminal_path) as term:
            proc = cli("sim", "pos", bridge.till_path, stdin="coupon abc\n")
            assert not term.messages
        assert proc.returncode == 2, proc.stderr
        assert "<stdin>:1: coupon: coupon.present: field 'code' must be 10 characters" \
            in proc.stderr
        assert "Traceback" not in proc.stderr

    def test_default_sale_numbers_differ_between_runs(self) -> None:
        """A restarted till does not start again at a number it already committed."""
        firsts = []
        for _ in range(2):
            with PtyBridge() as bridge, EchoTerminal(bridge.terminal_path):
                proc = cli("sim", "pos", bridge.till_path, stdin="")
            firsts.append(proc.stdout.split("sale ")[1].split()[0])
            time.sleep(1.1)
        assert firsts[0] != firsts[1] and all(f.endswith("-0001") for f in firsts)

    def test_failed_expectation_exits_1(self, tmp_path: Path) -> None:
        """A failing expect stops the script with exit 1 and names the file and line."""
        script = tmp_path / "bad.txt"
        script.write_text("line A 1 100\nexpect total_due=999\nline B 1 1\n")
        with PtyBridge() as bridge, EchoTerminal(bridge.terminal_path) as term:
            proc = cli("sim", "pos", bridge.till_path, "--script", str(script),
                       "--txn-prefix", "T-")
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
        """The reference till (sim pos's console) breaks no rule: every check passes,
        member binding included, with a cashier who follows the checker's prompts."""
        said: list[str] = []
        prompts: queue.Queue[str] = queue.Queue()

        def say(text: str) -> None:
            said.append(text)
            prompts.put(text)

        with PtyBridge() as bridge, SimulatedTill(bridge.till_path, pos_id="VENDOR") as till:
            shown: list[str] = []
            console = TillConsole(till, shown.append, txn_prefix="S-")
            console.start()

            def tapped(member_id: str) -> None:
                deadline = time.monotonic() + 10
                while (console.tapped or {}).get("member_id") != member_id:
                    assert time.monotonic() < deadline, shown
                    time.sleep(0.01)

            script = {
                "ring up a sale on the till now": ["line A 1 100"],
                "now finish (commit)": ["commit"],
                "member A tapped": ["=M-CHECK-A", "line A 1 1.00"],
                "member B tapped": ["=M-CHECK-B", "commit", "member M-CHECK-B", "commit"],
                "member C tapped": ["=M-CHECK-C", "line C 1 5.00"],
                "redeem points": ["redeem 100", "unredeem", "member none"],
                "present the coupon code": ["line K 1 10.00", "coupon check23456", "commit"],
            }

            def cashier() -> None:
                while True:
                    text = prompts.get(timeout=60)
                    for key, commands in script.items():
                        if text.startswith(key):
                            for cmd in commands:
                                if cmd.startswith("="):
                                    tapped(cmd[1:])
                                else:
                                    console.execute(cmd)
                            if key == "present the coupon code":
                                return

            worker = threading.Thread(target=cashier, daemon=True)
            worker.start()
            results = ConformanceChecker(bridge.terminal_path, hello_wait=10, sale_wait=30,
                                         say=say).run()
            worker.join(timeout=30)
            console.stop()
        failed = [r for r in results if r.status != "PASS"]
        assert failed == [], "\n".join(said + shown)
        assert len(results) >= 20
        assert any("member_changed" in line for line in shown)
        assert any("receipt link: https://shop.example/v/" in line for line in shown)

    @pytest.mark.slow(seconds=10)
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
