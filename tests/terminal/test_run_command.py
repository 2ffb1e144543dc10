"""`pos-loyalty run` as store IT starts it: a separate process, real pty, nfcpy udp, signals."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pos_loyalty.nfc.sim.cards import foreign_tag, member_card
from pos_loyalty.nfc.sim.emulator import TagEmulator
from pos_loyalty.pos.pty import PtyBridge
from pos_loyalty.pos.till import SimulatedTill
from tests.ports import held_udp_port

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    env = env or {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "pos_loyalty", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[tuple[TagEmulator, PtyBridge, Path]]:
    with TagEmulator() as rf, PtyBridge() as bridge:
        yield rf, bridge, tmp_path


class TestRunDaemon:
    def test_serves_taps_and_stops_on_sigterm(
            self, rig: tuple[TagEmulator, PtyBridge, Path]) -> None:
        """The daemon answers the till for taps and sales, then exits 0 on SIGTERM."""
        rf, bridge, tmp = rig
        db = tmp / "terminal.db"
        proc = cli("run", "--simulation", "--serial", bridge.terminal_path,
                   "--reader", f"udp:127.0.0.1:{rf.port}", "--db", f"sqlite:///{db}",
                   "--demo-members")
        try:
            with SimulatedTill(bridge.till_path, pos_id="POS-7") as till:
                till.wait_link_up(timeout=20)
                rf.present(member_card("C-1002"))
                ident = till.next_message({"member.identified"}, timeout=20)
                rf.remove()
                assert (ident["member_id"], ident["balance"]) == ("M-1002", 40)
                till.send_basket("T1", [{"sku": "A", "qty": 3, "unit_price": 250,
                                         "category": "x"}])
                awarded = till.commit("T1")
                assert (awarded["points"], awarded["balance_after"]) == (7, 47)
                rf.present(foreign_tag())
                refused = till.next_message({"card.refused"}, timeout=20)
                rf.remove()
                assert "foreign tag" in refused["reason"]
            proc.send_signal(signal.SIGTERM)
            _out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 0, err
        assert "stopped" in err
        assert "Traceback" not in err


class TestSystemd:
    def test_ready_and_watchdog_pings(self, rig: tuple[TagEmulator, PtyBridge, Path]) -> None:
        """Under systemd the daemon says READY=1 and keeps pinging the watchdog."""
        rf, bridge, tmp = rig
        sock_path = str(tmp / "notify.sock")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(sock_path)
            sock.settimeout(30)
            proc = cli("run", "--simulation", "--serial", bridge.terminal_path, "--reader",
                       f"udp:127.0.0.1:{rf.port}", "--db", f"sqlite:///{tmp / 't.db'}",
                       env={**os.environ, "PYTHONPATH": str(ROOT), "NOTIFY_SOCKET": sock_path,
                            "WATCHDOG_USEC": "400000"})
            try:
                got = [sock.recv(64) for _ in range(3)]
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.communicate(timeout=20)
        assert got[0] == b"READY=1"
        assert got[1:] == [b"WATCHDOG=1", b"WATCHDOG=1"]
        assert proc.returncode == 0


class TestFaultExit:
    def test_dead_reader_loop_exits_non_zero(
            self, rig: tuple[TagEmulator, PtyBridge, Path]) -> None:
        """A loop that ends on its own stops the daemon with exit 1 (systemd restarts it)."""
        try:
            import smartcard  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
        except ImportError:
            pass
        else:
            pytest.skip("pyscard is installed: the PC/SC reader loop would not end")
        _rf, bridge, tmp = rig
        proc = cli("run", "--simulation", "--serial", bridge.terminal_path, "--reader", "pcsc",
                   "--db", f"sqlite:///{tmp / 't.db'}")
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 1, err
        assert "stopped on a fault: the NFC reader loop stopped" in err

    def test_baud_option_and_json_logs(
            self, rig: tuple[TagEmulator, PtyBridge, Path]) -> None:
        """--baud sets the line speed; --log-format json writes one JSON object per line."""
        rf, bridge, tmp = rig
        proc = cli("run", "--simulation", "--serial", bridge.terminal_path, "--reader",
                   f"udp:127.0.0.1:{rf.port}", "--db", f"sqlite:///{tmp / 't.db'}",
                   "--demo-members", "--baud", "9600", "--log-format", "json")
        try:
            with SimulatedTill(bridge.till_path, baudrate=9600) as till:
                # generous bounds: a daemon that just started on a loaded machine (parallel
                # workers) may take many seconds to import, migrate and open its reader
                till.wait_link_up(timeout=60)
                rf.present(member_card("C-1001"))
                till.next_message({"member.identified"}, timeout=60)
                rf.remove()
        finally:
            proc.send_signal(signal.SIGTERM)
            _out, err = proc.communicate(timeout=20)
        assert "at 9600 baud" in err
        records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
        msgs = [r["msg"] for r in records]
        assert any(m.startswith("till connected on") for m in msgs), msgs
        assert any(m.startswith("tap: card C-1001 -> member Ada Lovelace (M-1001)")
                   for m in msgs), msgs
        assert not any(r["logger"].startswith(("alembic", "nfc.")) for r in records)
        assert all(set(r) >= {"ts", "level", "logger", "msg"} for r in records)


class TestStartupErrors:
    def test_bad_config_names_file_key_and_line(self, tmp_path: Path) -> None:
        """A bad config stops the daemon with one line naming the key and line, exit 2."""
        conf = tmp_path / "terminal.toml"
        conf.write_text('[terminal]\nid = "T-1"\n\n[serial]\nbaudrate = "fast"\n')
        proc = cli("run", "--config", str(conf))
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 2
        assert err.strip() == (f"pos-loyalty: config error: {conf}:5: key 'serial.baudrate': "
                               "must be int, got 'fast'")

    def test_missing_serial_port_is_explained(self, tmp_path: Path) -> None:
        """Without a serial port the daemon says how to give one, exit 2."""
        proc = cli("run", "--db", f"sqlite:///{tmp_path / 't.db'}")
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 2
        assert "--serial" in err and "Traceback" not in err

    def test_unopenable_serial_port_is_one_line(self, tmp_path: Path) -> None:
        """A serial port that does not exist is reported in one line, exit 1."""
        proc = cli("run", "--simulation", "--serial", str(tmp_path / "no-such-tty"), "--reader",
                   "udp:127.0.0.1:9", "--db", f"sqlite:///{tmp_path / 't.db'}")
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 1, err
        assert "cannot start" in err and "Traceback" not in err


class TestProgramFile:
    """`[program] file` in the config is the program the running daemon quotes with."""

    def test_config_program_is_used_at_the_till(
            self, rig: tuple[TagEmulator, PtyBridge, Path]) -> None:
        """With cafe.toml, a redemption quotes and commits at the cafe's rate."""
        rf, bridge, tmp = rig
        conf = tmp / "terminal.toml"
        cafe = ROOT / "examples" / "programs" / "cafe.toml"
        conf.write_text(f'[terminal]\nid = "T-CAFE"\ndata_dir = "{tmp}"\n'
                        f'[program]\nfile = "{cafe}"\n')
        proc = cli("run", "--simulation", "--config", str(conf), "--serial", bridge.terminal_path,
                   "--reader", f"udp:127.0.0.1:{rf.port}", "--demo-members")
        try:
            with SimulatedTill(bridge.till_path, pos_id="POS-7") as till:
                till.wait_link_up(timeout=20)
                rf.present(member_card("C-1001"))
                assert till.next_message({"member.identified"}, timeout=20)["balance"] == 120
                rf.remove()
                till.send_basket("T1", [{"sku": "CAKE", "qty": 1, "unit_price": 1000,
                                         "category": "food"}])
                q = till.redeem("T1", 120)
                assert [ln["value"] for ln in q["lines"] if ln["kind"] == "redeem"] == [120]
                awarded = till.commit("T1")
                assert (awarded["points"], awarded["balance_after"]) == (8 - 120, 8)
            proc.send_signal(signal.SIGTERM)
            _out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 0, err

    def test_bad_program_file_stops_the_daemon_in_one_line(self, tmp_path: Path) -> None:
        """A program error names the file, key and line; the daemon does not start."""
        prog = tmp_path / "p.toml"
        prog.write_text('[program]\nname = "X"\n\n[[rule]]\nkind = "earn"\npoints = "many"\n')
        conf = tmp_path / "terminal.toml"
        conf.write_text(f'[terminal]\ndata_dir = "{tmp_path}"\n[program]\nfile = "{prog}"\n')
        proc = cli("run", "--simulation", "--config", str(conf), "--serial", str(tmp_path / "tty"))
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 1, err
        assert f"{prog}:6" in err and "points" in err and "Traceback" not in err


class TestSimPty:
    def test_sim_pty_links_daemon_and_till(self, tmp_path: Path) -> None:
        """`sim pty` prints two linked ports a daemon and a till can talk over."""
        cable = cli("sim", "pty")
        daemon: subprocess.Popen[str] | None = None
        try:
            assert cable.stdout is not None
            terminal_side = cable.stdout.readline().split(":", 1)[1].strip()
            till_side = cable.stdout.readline().split(":", 1)[1].strip()
            with TagEmulator() as rf:
                daemon = cli("run", "--simulation", "--serial", terminal_side, "--reader",
                             f"udp:127.0.0.1:{rf.port}", "--db",
                             f"sqlite:///{tmp_path / 't.db'}", "--demo-members")
                with SimulatedTill(till_side) as till:
                    till.wait_link_up(timeout=20)
                    rf.present(member_card("C-1003"))
                    ident = till.next_message({"member.identified"}, timeout=20)
                    rf.remove()
            assert ident["name"] == "Alan Turing"
        finally:
            for proc in (daemon, cable):
                if proc is not None:
                    proc.send_signal(signal.SIGTERM)
                    proc.communicate(timeout=20)
        assert cable.returncode == 0


@pytest.mark.slow(seconds=15)
class TestSimTagReachesTheTill:
    def test_each_one_tap_command_is_one_tap_at_the_till(
            self, rig: tuple[TagEmulator, PtyBridge, Path]) -> None:
        """`pos-loyalty sim tag --card C-1001`, run three times with its defaults against a
        running terminal, reaches the till three times (a 300 ms hold missed the reader
        while it was reconnecting to the port)."""
        rf, bridge, tmp = rig
        port = rf.port  # rf keeps it, with no tag in its field, until sim tag's first run
        proc = cli("run", "--simulation", "--serial", bridge.terminal_path, "--reader",
                   f"udp:127.0.0.1:{port}",
                   "--db", f"sqlite:///{tmp / 't.db'}", "--demo-members")
        try:
            with SimulatedTill(bridge.till_path) as till:
                till.wait_link_up(timeout=30)
                rf.close()  # the port is sim tag's now, as when store IT types the command
                got = []
                for _ in range(3):
                    tag = cli("sim", "tag", "--port", str(port), "--card", "C-1001")
                    tag.communicate(timeout=60)
                    got.append(till.next_message({"member.identified"}, timeout=5)["card_id"])
                    # nobody on the port for longer than the reader's reopen backoff (1 s at
                    # most): the next run meets a reader between two attempts to reopen;
                    # held meanwhile so that no other socket is given it
                    with held_udp_port(port):
                        time.sleep(2.5)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=20)
        assert got == ["C-1001"] * 3
