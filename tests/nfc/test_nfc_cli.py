"""The NFC commands: sim tag as its own process, tap scripts, card issue, tag write, keygen."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from nfc_testkit import ReaderSession

from pos_loyalty.cli import main
from pos_loyalty.errors import ConfigError
from pos_loyalty.nfc.cardformat import CardTrust
from pos_loyalty.nfc.demo_keys import demo_trust
from pos_loyalty.nfc.keys import load_issuer
from pos_loyalty.nfc.sim import cards
from pos_loyalty.nfc.sim.emulator import TagEmulator
from pos_loyalty.nfc.sim.ntag import Ntag21x
from pos_loyalty.nfc.sim.script import TagFactory, load_script, parse_script, play

ROOT = Path(__file__).parents[2]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    return env


class SimTagProcess:
    """``pos-loyalty sim tag`` in interactive mode as a separate process."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pos_loyalty", "sim", "tag", "--port", "0", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=_env())
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        assert "udp:127.0.0.1:" in first, first
        self.path = first.split()[3]

    def send(self, line: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        while True:
            out = self.proc.stdout.readline()
            if not out.startswith("type 'help'"):
                return out

    def close(self) -> int:
        if self.proc.poll() is None:
            self.proc.communicate("quit\n", timeout=10)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
        return self.proc.wait(timeout=10)


@pytest.fixture
def sim_process() -> Iterator[SimTagProcess]:
    sim = SimTagProcess()
    yield sim
    sim.close()


class TestSimTagProcess:
    def test_interactive_taps_read_by_reader(self, sim_process: SimTagProcess) -> None:
        """Tags presented by the separate sim tag process are read by a Reader over udp."""
        session = ReaderSession(sim_process.path, demo_trust(), 0.0)
        session.start()
        try:
            assert sim_process.send("member PROC-1").startswith("presented member")
            event = session.next_event()
            assert (event.kind, event.card_id, event.verified) == ("member", "PROC-1", True)
            sim_process.send("remove")
            sim_process.send("foreign")
            assert session.next_event().kind == "refused"
            sim_process.send("remove")
        finally:
            session.close()
        assert sim_process.close() == 0

    def test_bad_interactive_command_is_reported(self, sim_process: SimTagProcess) -> None:
        """An unknown command gets an error line and the process keeps running."""
        assert sim_process.send("frobnicate").startswith("error:")
        assert sim_process.send("blank").startswith("presented blank")

    def test_binds_loopback_only(self, sim_process: SimTagProcess) -> None:
        """The emulator process listens on 127.0.0.1 only."""
        assert sim_process.path.startswith("udp:127.0.0.1:")

    def test_card_held_until_sigterm(self) -> None:
        """--hold-ms 0 keeps the card on the reader until SIGTERM, then exits cleanly."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "pos_loyalty", "sim", "tag", "--port", "0", "--card",
             "HOLD-9", "--hold-ms", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=_env())
        assert proc.stdout is not None
        path = proc.stdout.readline().split()[3]
        assert proc.stdout.readline().startswith("tap 1: member")
        session = ReaderSession(path, demo_trust(), 0.0).start()
        try:
            assert session.next_event(10).card_id == "HOLD-9"
            time.sleep(0.5)
            assert session.events.empty()  # held: one tap
        finally:
            session.close()
            proc.send_signal(signal.SIGTERM)
            _out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err

    def test_conflicting_tag_options_exit_2(self) -> None:
        """Two tag choices at once are a usage error: one line, exit 2."""
        res = subprocess.run(
            [sys.executable, "-m", "pos_loyalty", "sim", "tag", "--port", "0", "--blank",
             "--foreign"], capture_output=True, text=True, env=_env(), timeout=30)
        assert res.returncode == 2
        assert "choose one of" in res.stderr and "Traceback" not in res.stderr

    def test_bad_script_exit_2_names_key(self, tmp_path: Path) -> None:
        """A script with a wrong tag kind fails with the file and key named, exit 2."""
        script = tmp_path / "bad.toml"
        script.write_text('[[tap]]\ntag = "member"\ncard = "A"\n[[tap]]\ntag = "toaster"\n')
        res = subprocess.run(
            [sys.executable, "-m", "pos_loyalty", "sim", "tag", "--port", "0", "--script",
             str(script)], capture_output=True, text=True, env=_env(), timeout=30)
        assert res.returncode == 2
        assert str(script) in res.stderr and "tap[2].tag" in res.stderr
        assert "Traceback" not in res.stderr

    def test_script_process_plays_taps(self, tmp_path: Path) -> None:
        """A JSON script played by the process reaches a reader tap by tap."""
        script = tmp_path / "s.json"
        script.write_text(json.dumps({"tap": [
            {"tag": "member", "card": "S-1", "hold_ms": 1500, "gap_ms": 300},
            {"tag": "blank", "hold_ms": 1500, "gap_ms": 0}]}))
        proc = subprocess.Popen(
            [sys.executable, "-m", "pos_loyalty", "sim", "tag", "--port", "0", "--script",
             str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=_env())
        assert proc.stdout is not None
        path = proc.stdout.readline().split()[3]
        session = ReaderSession(path, demo_trust(), 0.0)
        session.start()
        try:
            first, second = session.next_event(10), session.next_event(10)
        finally:
            session.close()
            out, _err = proc.communicate(timeout=20)
        assert (first.kind, first.card_id) == ("member", "S-1")
        assert second.kind == "refused" and "blank" in (second.reason or "")
        assert proc.returncode == 0 and "done: 2 taps" in out


class TestTapScripts:
    def test_toml_and_json_parse_alike(self, tmp_path: Path) -> None:
        """The same session in TOML and JSON gives the same script."""
        (tmp_path / "a.toml").write_text(
            'repeat = 2\n[[tap]]\ntag = "member"\ncard = "C-1"\nhold_ms = 100\n'
            '[[tap]]\ntag = "product"\nproduct = "SKU-9"\nuid = "04A1B2C3D4E5F6"\n')
        (tmp_path / "a.json").write_text(json.dumps({"repeat": 2, "tap": [
            {"tag": "member", "card": "C-1", "hold_ms": 100},
            {"tag": "product", "product": "SKU-9", "uid": "04A1B2C3D4E5F6"}]}))
        a, b = load_script(tmp_path / "a.toml"), load_script(tmp_path / "a.json")
        assert a.taps == b.taps and a.repeat == b.repeat == 2
        assert a.taps[0].hold_ms == 100 and a.taps[0].gap_ms == 500
        assert a.taps[1].tag.uid == bytes.fromhex("04A1B2C3D4E5F6")

    @pytest.mark.parametrize("doc,key", [
        ({"tap": []}, "tap"),
        ({"tap": [{"tag": "member"}]}, "tap[1].card"),
        ({"tap": [{"tag": "blank", "card": "X"}]}, "tap[1].card"),
        ({"tap": [{"tag": "member", "card": "X", "hold_ms": -1}]}, "tap[1].hold_ms"),
        ({"tap": [{"tag": "blank", "uid": "0102"}]}, "tap[1].uid"),
        ({"tap": [{"tag": "blank", "colour": "red"}]}, "tap[1].colour"),
        ({"tap": [{"tag": "blank"}], "repeat": 0}, "repeat"),
        ({"tap": [{"tag": "blank", "model": "NTAG999"}]}, "tap[1].model"),
    ])
    def test_errors_name_the_key(self, doc: dict[str, object], key: str) -> None:
        """Every invalid entry is a ConfigError naming the offending key."""
        with pytest.raises(ConfigError) as info:
            parse_script(doc, "s.json")
        assert info.value.key == key

    def test_shipped_example_is_valid(self) -> None:
        """hardware/tap-session.example.toml parses, with the repeated card as one tag."""
        script = load_script(ROOT / "hardware" / "tap-session.example.toml")
        kinds = [t.tag.kind for t in script.taps]
        assert kinds == ["member", "member", "product", "copied", "foreign", "blank", "legacy"]
        assert script.taps[0].tag == script.taps[1].tag

    def test_invalid_json_names_line(self, tmp_path: Path) -> None:
        """A JSON syntax error names the file and line."""
        bad = tmp_path / "bad.json"
        bad.write_text('{"tap": [\n  {"tag": }\n]}')
        with pytest.raises(ConfigError) as info:
            load_script(bad)
        assert info.value.line == 2

    def test_play_drives_reader_and_repeats_same_card(self, emulator: TagEmulator) -> None:
        """play() presents each tap in turn; a repeated card keeps its UID."""
        script = parse_script({"repeat": 2, "tap": [
            {"tag": "member", "card": "PLAY-1", "hold_ms": 400, "gap_ms": 400},
            {"tag": "legacy", "hold_ms": 400, "gap_ms": 400}]})
        session = ReaderSession(emulator, demo_trust(), 0.0).start()
        stop = threading.Event()
        try:
            assert play(emulator, script, stop, factory=TagFactory()) == 4
            events = [session.next_event() for _ in range(4)]
        finally:
            session.close()
        assert [e.kind for e in events] == ["member", "refused", "member", "refused"]
        assert events[0].uid == events[2].uid and events[1].uid == events[3].uid


class TestProvisioning:
    def test_card_issue_writes_verifies_and_locks(self, emulator: TagEmulator) -> None:
        """card issue on a blank NTAG213 writes a card that reads back verified, and locks it."""
        blank = cards.blank_tag()
        emulator.present(blank)
        res = CliRunner().invoke(main, ["card", "issue", "--reader", emulator.path,
                                        "--card-id", "NEW-0001"])
        emulator.remove()
        assert res.exit_code == 0, res.output
        summary = json.loads(res.stdout.strip().splitlines()[-1])
        assert summary["uid"] == blank.uid.hex().upper()
        assert summary["verified"] is True and summary["locked"] is True
        assert blank.static_lock == b"\xff\xff" and blank.dynamic_lock == b"\xff\xff\xff"
        assert blank.config_locked
        session = ReaderSession(emulator, demo_trust(), 0.0).start()
        try:
            event = session.tap(blank)
        finally:
            session.close()
        assert (event.kind, event.card_id, event.verified) == ("member", "NEW-0001", True)

    def test_locked_card_cannot_be_reissued(self, emulator: TagEmulator) -> None:
        """A card issued and locked refuses a second issue with a clear line, exit 1."""
        tag = cards.blank_tag()
        runner = CliRunner()
        for expected in (0, 1):
            emulator.present(tag)
            res = runner.invoke(main, ["card", "issue", "--reader", emulator.path,
                                       "--card-id", "TWICE"])
            emulator.remove()
            assert res.exit_code == expected, res.output
        assert "read-only" in res.stderr

    def test_issue_with_own_key(self, emulator: TagEmulator, tmp_path: Path) -> None:
        """A card issued with a shop key verifies with that key only, not the demo key."""
        key_file = tmp_path / "issuer.pem"
        runner = CliRunner()
        gen = runner.invoke(main, ["card", "keygen", "--out", str(key_file)])
        assert gen.exit_code == 0, gen.output
        public = json.loads(gen.stdout.strip().splitlines()[-1])["public_key"]
        assert load_issuer(key_file).public_key.hex() == public
        tag = cards.blank_tag()
        emulator.present(tag)
        res = runner.invoke(main, ["card", "issue", "--reader", emulator.path, "--card-id",
                                   "SHOP-1", "--key", str(key_file), "--no-lock"])
        emulator.remove()
        assert res.exit_code == 0, res.output
        assert tag.static_lock == b"\x00\x00"
        shop = ReaderSession(emulator, CardTrust.from_hex([public]), 0.0).start()
        try:
            assert shop.tap(tag).kind == "member"
        finally:
            shop.close()
        demo = ReaderSession(emulator, demo_trust(), 0.0).start()
        try:
            assert demo.tap(tag).kind == "refused"
        finally:
            demo.close()

    def test_no_card_presented(self, emulator: TagEmulator) -> None:
        """With an empty field card issue gives up after its timeout, exit 1."""
        res = CliRunner().invoke(main, ["card", "issue", "--reader", emulator.path,
                                        "--card-id", "X", "--timeout", "0.5"])
        assert res.exit_code == 1
        assert "no card was presented" in res.stderr

    def test_tag_write_product_on_ntag215(self, emulator: TagEmulator) -> None:
        """tag write puts a signed product URI on an NTAG215; a reader sees the product."""
        tag = Ntag21x("NTAG215")
        emulator.present(tag)
        res = CliRunner().invoke(main, ["tag", "write", "--reader", emulator.path,
                                        "--product", "4006381333931"])
        emulator.remove()
        assert res.exit_code == 0, res.output
        session = ReaderSession(emulator, demo_trust(), 0.0).start()
        try:
            event = session.tap(tag)
        finally:
            session.close()
        assert event.kind == "product" and event.product is not None
        assert event.product["product"] == "4006381333931"

    def test_tag_write_too_big_for_ntag213(self, emulator: TagEmulator) -> None:
        """A product URI too long for an NTAG213 is refused before anything is written."""
        tag = cards.blank_tag()
        before = tag.memory
        emulator.present(tag)
        res = CliRunner().invoke(main, ["tag", "write", "--reader", emulator.path,
                                        "--product", "4006381333931"])
        emulator.remove()
        assert res.exit_code == 1
        assert "do not fit" in res.stderr
        assert tag.memory == before

    def test_bad_key_file_exit_2(self, tmp_path: Path) -> None:
        """An unreadable key file is a configuration error naming the file."""
        bad = tmp_path / "k.pem"
        bad.write_text("not a key")
        res = CliRunner().invoke(main, ["card", "issue", "--reader", "udp:127.0.0.1:9",
                                        "--card-id", "X", "--key", str(bad)])
        assert res.exit_code == 2
        assert str(bad) in res.stderr
