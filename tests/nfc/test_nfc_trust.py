"""What a terminal trusts: no key by default, README's config, SUN keys and counters, legacy cards.

The end-to-end tests run the real daemon (nfcpy over ``udp`` to our emulated tags, protocol
v1 over a real pty to the reference till, SQLite store); the chain test adds a live central
server over HTTP (SQLite and PostgreSQL).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import ndef
import pytest

from pos_loyalty.config import SunKeys, TerminalConfig, load_config, with_overrides
from pos_loyalty.errors import ConfigError
from pos_loyalty.migrations import upgrade_terminal
from pos_loyalty.nfc import sun
from pos_loyalty.nfc.cardformat import classify, member_card_ndef
from pos_loyalty.nfc.demo_keys import DEMO_ISSUER
from pos_loyalty.nfc.diversify import tag_key
from pos_loyalty.nfc.events import TapEvent
from pos_loyalty.nfc.sim.base import EmulatedTag
from pos_loyalty.nfc.sim.cards import member_card
from pos_loyalty.nfc.sim.emulator import TagEmulator
from pos_loyalty.nfc.sim.type4 import Ntag424Dna, Type4Tag
from pos_loyalty.nfc.sun import MemoryCounterStore
from pos_loyalty.pos.pty import PtyBridge
from pos_loyalty.pos.till import SimulatedTill
from pos_loyalty.rules import load_program
from pos_loyalty.store.local import LocalStore
from pos_loyalty.store.sun_counters import StoreCounters
from pos_loyalty.sync.client import SyncClient, run_sync
from pos_loyalty.terminal.daemon import TerminalDaemon, card_trust
from pos_loyalty.terminal.service import TerminalService
from tests.conftest import Central, TerminalFactory

ROOT = Path(__file__).resolve().parents[2]
TAP_ANSWERS = {"member.identified", "member.unknown", "card.refused"}
REMOVAL_SETTLE_S = 0.4  # nfcpy's presence check notices a removed card after ~0.3 s

META = bytes.fromhex("0F1E2D3C4B5A69788796A5B4C3D2E1F0")
MASTER = bytes.fromhex("F0E1D2C3B4A5968778695A4B3C2D1E0F")
SYSTEM_ID = b"chain-test"
MEMBER_URL = "https://loyalty.example.com/m"
SUN_KEYS = SunKeys(META, MASTER, SYSTEM_ID, member_url=MEMBER_URL)
CARD_UID = bytes.fromhex("04A0B1C2D3E4F5")
CARD_DATA = sun.pack_file_data({"card": "C-1"})


def sun_url(uid: bytes, counter: int, *, file_key: bytes | None = None,
            lrp: bool = False) -> str:
    """The SUN URL a card provisioned with the chain's keys mirrors at this read counter."""
    key = file_key if file_key is not None else tag_key(MASTER, uid, SYSTEM_ID)
    msg = sun.generate_sun(META, key, uid, counter, file_data=CARD_DATA,
                           lrp_rand=bytes(range(8)) if lrp else None)
    return msg.url(MEMBER_URL)


def url_octets(url: str) -> bytes:
    return b"".join(ndef.message_encoder([ndef.UriRecord(url)]))


def static_copy(url: str, uid: bytes = CARD_UID) -> Type4Tag:
    """A tag that always shows one recorded SUN URL (a clone, UID and all)."""
    return Type4Tag(uid, url_octets(url), writable=False)


def readme_config(tmp: Path) -> Path:
    """The terminal config exactly as the README shows it, its paths moved under ``tmp``."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```toml\n(.*?)```", text, flags=re.S)
    block = next(b for b in blocks if "[cards]" in b)
    (tmp / "program.toml").write_text(
        (ROOT / "examples" / "programs" / "cafe.toml").read_text(encoding="utf-8"))
    path = tmp / "terminal.toml"
    path.write_text(block.replace("/var/lib/pos-loyalty", str(tmp)), encoding="utf-8")
    return path


class Terminal:
    """A running daemon with its RF field and the reference till."""

    def __init__(self, config: TerminalConfig, rf: TagEmulator, bridge: PtyBridge) -> None:
        self.rf = rf
        self.daemon = TerminalDaemon(config)
        self.till = SimulatedTill(bridge.till_path, pos_id="POS-1")
        self._thread = threading.Thread(target=self.daemon.run, daemon=True)

    def __enter__(self) -> Terminal:
        self.daemon.start()
        self._thread.start()
        self.till.start()
        self.till.wait_link_up(timeout=20)
        return self

    def __exit__(self, *exc: object) -> None:
        self.till.close()
        self.daemon.stop()
        self._thread.join(timeout=10)

    def tap(self, tag: EmulatedTag) -> dict[str, Any]:
        time.sleep(REMOVAL_SETTLE_S)
        self.rf.present(tag)
        try:
            return self.till.next_message(TAP_ANSWERS, timeout=20)
        finally:
            self.rf.remove()


@pytest.fixture
def rig() -> Iterator[tuple[TagEmulator, PtyBridge]]:
    with TagEmulator() as rf, PtyBridge() as bridge:
        yield rf, bridge


def rig_config(tmp: Path, rig: tuple[TagEmulator, PtyBridge], db_url: str | None = None,
               **changes: Any) -> TerminalConfig:
    rf, bridge = rig
    return TerminalConfig(terminal_id="T-TEST", data_dir=tmp,
                          reader_path=f"udp:127.0.0.1:{rf.port}", debounce_s=0.0,
                          serial_port=bridge.terminal_path,
                          db_url=db_url or f"sqlite:///{tmp / 'terminal.db'}", **changes)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), POS_LOYALTY_DATA_DIR="/nonexistent/data")
    return subprocess.run([sys.executable, "-m", "pos_loyalty", *args], capture_output=True,
                          text=True, timeout=60, env=env, check=False)


class TestNoImplicitTrust:
    def test_no_issuer_key_stops_run_naming_file_line_and_key(self, tmp_path: Path) -> None:
        """A config without issuer keys stops `run` in one line: file, line, key; exit 2."""
        conf = tmp_path / "terminal.toml"
        conf.write_text('[terminal]\nid = "T-9"\n\n[cards]\naccept_legacy_uid = false\n')
        proc = cli("run", "--config", str(conf), "--serial", str(tmp_path / "tty"))
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
        assert lines[0].startswith(f"pos-loyalty: config error: {conf}:4: key "
                                   "'cards.issuer_keys': no card issuer key")
        assert "--simulation" in lines[0]

    def test_defaults_trust_nothing(self, tmp_path: Path) -> None:
        """With no config at all the terminal does not start either (it used to trust demo)."""
        proc = cli("run", "--serial", str(tmp_path / "tty"))
        assert proc.returncode == 2, proc.stderr
        assert "key 'cards.issuer_keys'" in proc.stderr and "Traceback" not in proc.stderr

    @pytest.mark.parametrize("key", ["0011", "zz" * 32, "00" * 33])
    def test_issuer_key_must_be_a_public_key(self, tmp_path: Path, key: str) -> None:
        """An issuer key that is not 64 hex digits is a config error on its line."""
        conf = tmp_path / "t.toml"
        conf.write_text(f'[cards]\n\nissuer_keys = ["{key}"]\n')
        with pytest.raises(ConfigError) as info:
            load_config(conf)
        assert (info.value.key, info.value.line) == ("cards.issuer_keys", 3)
        assert "64 hex digits" in str(info.value)

    def test_daemon_itself_refuses_without_keys(self, tmp_path: Path,
                                                rig: tuple[TagEmulator, PtyBridge]) -> None:
        """The daemon class checks too: code that builds its own config cannot skip it."""
        with pytest.raises(ConfigError, match=r"cards\.issuer_keys"):
            TerminalDaemon(rig_config(tmp_path, rig))

    def test_simulation_in_the_config_file(self, tmp_path: Path) -> None:
        """`simulation = true` under [cards] trusts the demo issuer, and only then."""
        conf = tmp_path / "t.toml"
        conf.write_text("[cards]\nsimulation = true\n")
        uid = bytes.fromhex("04112233445566")
        octets = member_card_ndef("C-1001", uid, DEMO_ISSUER)
        trust = card_trust(load_config(conf), MemoryCounterStore())
        assert classify(uid, "NTAG213", octets, trust).kind == "member"

    def test_readme_config_refuses_a_demo_key_card(
            self, tmp_path: Path, rig: tuple[TagEmulator, PtyBridge]) -> None:
        """A terminal configured as the README shows starts, and refuses a demo-signed card."""
        config = with_overrides(load_config(readme_config(tmp_path)),
                                serial=rig[1].terminal_path,
                                reader=f"udp:127.0.0.1:{rig[0].port}")
        config = replace(config, debounce_s=0.0)
        assert not config.simulation and config.issuer_keys
        with Terminal(config, *rig) as term:
            term.daemon.store.add_member("M-1001", "Ada", card_id="C-1001")
            refused = term.tap(member_card("C-1001"))
        assert refused["type"] == "card.refused", refused
        assert "unknown issuer" in refused["reason"]
        with Terminal(replace(config, simulation=True), *rig) as term:  # the same card, in a
            assert term.tap(member_card("C-1001"))["type"] == "member.identified"  # simulation


class TestSunKeysConfig:
    def test_inline_and_key_file(self, tmp_path: Path) -> None:
        """[sun] keys are read inline or from key_file (relative to the config)."""
        inline = tmp_path / "a.toml"
        inline.write_text(f'[sun]\nmeta_key = "{META.hex()}"\nfile_master_key = '
                          f'"{MASTER.hex()}"\nsystem_id = "chain-test"\n'
                          f'member_url = "{MEMBER_URL}"\n')
        (tmp_path / "keys.toml").write_text(f'meta_key = "{META.hex()}"\n'
                                            f'file_master_key = "{MASTER.hex()}"\n')
        by_file = tmp_path / "b.toml"
        by_file.write_text(f'[sun]\nkey_file = "keys.toml"\nsystem_id = "chain-test"\n'
                           f'member_url = "{MEMBER_URL}"\n')
        assert load_config(inline).sun_keys == load_config(by_file).sun_keys == SUN_KEYS

    @pytest.mark.parametrize(("text", "key", "line"), [
        ('[sun]\nmeta_key = "00"\nfile_master_key = "00"\n', "sun.meta_key", 2),
        (f'[sun]\nmeta_key = "{META.hex()}"\nmember_url = "{MEMBER_URL}"\n',
         "sun.file_master_key", None),
        (f'[sun]\nmeta_key = "{META.hex()}"\nfile_master_key = "{MASTER.hex()}"\n'
         'member_url = "http://x/m"\n', "sun.member_url", 4),
        (f'[sun]\nmeta_key = "{META.hex()}"\nfile_master_key = "{MASTER.hex()}"\n',
         "sun", 1),
    ])
    def test_errors_name_the_key(self, tmp_path: Path, text: str, key: str,
                                 line: int | None) -> None:
        """A short key, a missing key, plain http or no URL prefix is a config error."""
        conf = tmp_path / "t.toml"
        conf.write_text(text)
        with pytest.raises(ConfigError) as info:
            load_config(conf)
        assert (info.value.key, info.value.line) == (key, line)


class TestSunVerification:
    def trust(self) -> Any:
        config = TerminalConfig(sun_keys=SUN_KEYS)
        return card_trust(config, MemoryCounterStore())

    def test_per_tag_key_in_aes_and_lrp_modes(self) -> None:
        """A card with its own diversified key verifies, in AES and in LRP mode."""
        for lrp in (False, True):
            event = classify(CARD_UID, "Type4Tag", url_octets(sun_url(CARD_UID, 3, lrp=lrp)),
                             self.trust())
            assert (event.kind, event.card_id, event.verified) == ("member", "C-1", True)

    def test_master_key_or_another_tags_key_refused(self) -> None:
        """A tag keyed with the master key itself, or with another UID's key, is refused."""
        other = tag_key(MASTER, bytes.fromhex("04000000000001"), SYSTEM_ID)
        for key in (MASTER, other):
            event = classify(CARD_UID, "Type4Tag",
                             url_octets(sun_url(CARD_UID, 3, file_key=key)), self.trust())
            assert event.kind == "refused" and "forged or tampered" in (event.reason or "")

    @pytest.mark.parametrize("uid_hex", ["08A1B2C3", "04A0B1C2D3E4F506", ""])
    def test_uid_of_wrong_length_refused(self, uid_hex: str) -> None:
        """A genuine SUN URL on a tag whose UID is not 7 bytes long is refused."""
        event = classify(bytes.fromhex(uid_hex), "Type4Tag",
                         url_octets(sun_url(CARD_UID, 3)), self.trust())
        assert event.kind == "refused" and "7" in (event.reason or ""), event

    def test_counters_survive_a_new_connection(self, tmp_path: Path) -> None:
        """A counter recorded in the store is there for the next process, and only rises."""
        url = f"sqlite:///{tmp_path / 't.db'}"
        upgrade_terminal(url)
        first = StoreCounters(url)
        first.record(CARD_UID, 7)
        first.record(CARD_UID, 5)
        first.close()
        again = StoreCounters(url)
        try:
            assert again.last_counter(CARD_UID) == 7
            assert again.last_counter(bytes(7)) is None
        finally:
            again.close()


class TestSunReplay:
    def test_replayed_url_refused_after_a_daemon_restart(
            self, tmp_path: Path, rig: tuple[TagEmulator, PtyBridge]) -> None:
        """A SUN URL accepted once is refused as a replay by the restarted daemon."""
        config = rig_config(tmp_path, rig, sun_keys=SUN_KEYS)
        copy = static_copy(sun_url(CARD_UID, 10))
        with Terminal(config, *rig) as term:
            term.daemon.store.add_member("M-1", "Ann", card_id="C-1")
            assert term.tap(copy)["member_id"] == "M-1"
        with Terminal(config, *rig) as term:
            replayed = term.tap(copy)
            fresh = term.tap(static_copy(sun_url(CARD_UID, 11)))
        assert replayed["type"] == "card.refused" and "replay" in replayed["reason"], replayed
        assert fresh["member_id"] == "M-1"

    def test_replayed_url_refused_at_a_second_terminal(
            self, tmp_path: Path, central: Central, terminals: TerminalFactory,
            rig: tuple[TagEmulator, PtyBridge]) -> None:
        """A URL accepted at one till is refused at another till of the chain after a sync."""
        central.store.add_member("M-1", "Ann", card_id="C-1")
        copy = static_copy(sun_url(CARD_UID, 20))
        first, second = terminals("S1", name="a"), terminals("S2", name="b")
        for t in (first, second):
            with SyncClient(t.server_url, t.credential) as client:
                assert run_sync(t.local, client).ok  # the member reaches both tills
        conf = {"sun_keys": SUN_KEYS, "sync_interval_s": 3600.0}
        with Terminal(rig_config(tmp_path, rig, first.local.url, **conf), *rig) as term:
            assert term.tap(copy)["member_id"] == "M-1"
        for t in (first, second):  # the first pushes the counter, the second pulls it
            with SyncClient(t.server_url, t.credential) as client:
                assert run_sync(t.local, client).ok
        with Terminal(rig_config(tmp_path, rig, second.local.url, **conf), *rig) as term:
            replayed = term.tap(copy)
            fresh = term.tap(Ntag424Dna(MEMBER_URL, META, tag_key(MASTER, CARD_UID, SYSTEM_ID),
                                        uid=CARD_UID, counter=21, file_data=CARD_DATA))
        assert replayed["type"] == "card.refused" and "replay" in replayed["reason"], replayed
        assert fresh["member_id"] == "M-1"


class TestLegacyCards:
    TAP = TapEvent("member", "04A1B2C3", "MIFARE Classic", verified=False)

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[LocalStore]:
        url = f"sqlite:///{tmp_path / 't.db'}"
        upgrade_terminal(url)
        store = LocalStore(url)
        yield store
        store.close()

    def test_looked_up_by_uid_never_by_card_number(self, store: LocalStore) -> None:
        """A UID-only tap finds the card with that UID, not a card numbered like the UID."""
        store.add_member("M-1", "Numbered like the UID", card_id="04A1B2C3", balance=500)
        service = TerminalService(store)
        assert service.on_tap(self.TAP)["type"] == "member.unknown"
        store.add_member("M-2", "Owner of the UID", card_id="C-2", uid="04A1B2C3", balance=500)
        assert service.on_tap(self.TAP)["member_id"] == "M-2"

    @pytest.mark.parametrize("allowed", [False, True])
    def test_earns_but_redeems_only_where_allowed(self, store: LocalStore,
                                                  allowed: bool) -> None:
        """An unverified tap earns; redeeming needs cards.legacy_uid_redeem for the store."""
        store.add_member("M-2", "Owner", card_id="C-2", uid="04A1B2C3", balance=500)
        service = TerminalService(store, load_program(ROOT / "examples" / "programs" / "cafe.toml"),
                                  legacy_uid_redeem=allowed)
        service.on_tap(self.TAP)
        basket = {"type": "basket.update", "pos_id": "P", "txn_id": "T1",
                  "lines": [{"sku": "A", "qty": 1, "unit_price": 1000, "category": "x"}]}
        assert service.on_message(basket)["type"] == "quote"
        redeem = service.on_message({"type": "redeem.request", "pos_id": "P", "txn_id": "T1",
                                     "points": 100})
        if allowed:
            assert redeem["type"] == "quote", redeem
        else:
            assert redeem["type"] == "error" and "cannot be verified" in redeem["message"]
        awarded = service.on_message({"type": "txn.commit", "pos_id": "P", "txn_id": "T1"})
        assert awarded["type"] == "points.awarded" and awarded["member_id"] == "M-2"
        assert awarded["points"] > 0 or allowed
