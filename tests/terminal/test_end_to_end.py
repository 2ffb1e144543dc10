"""One tap reaches the till, end to end: nfcpy udp RF, pyserial over a real pty, SQLite.

Nothing is mocked: the emulated tag answers nfcpy's own reader code, the daemon and the
reference till talk protocol v1 over a pseudo-terminal pair.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import ndef
import pytest

from pos_loyalty.demo import BASKETS, DemoRun
from pos_loyalty.nfc.sim.cards import blank_tag, foreign_tag, member_card
from pos_loyalty.nfc.sim.emulator import TagEmulator
from pos_loyalty.pos.pty import PtyBridge

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def run(tmp_path: Path) -> Iterator[DemoRun]:
    lines: list[str] = []
    with TagEmulator() as rf, PtyBridge() as bridge:
        demo = DemoRun(lines.append, tmp_path, rf, bridge)
        demo.start()
        try:
            yield demo
        finally:
            demo.close()


class TestTapToTill:
    def test_member_tap_quote_commit_and_ledger(self, run: DemoRun) -> None:
        """A member tap is identified on the till, the sale earns points, the ledger records it."""
        ident = run.tap("Ada", member_card("C-1001"))
        assert ident["type"] == "member.identified"
        assert (ident["member_id"], ident["name"], ident["tier"], ident["balance"]) == (
            "M-1001", "Ada Lovelace", "Gold", 120)
        basket_total = sum(line.qty * line.unit_price for line in BASKETS[0])
        awarded = run.sale(BASKETS[0])
        expected_points = basket_total // 100  # default program: 1 point per 1.00
        assert awarded["type"] == "points.awarded"
        assert awarded["member_id"] == "M-1001"
        assert awarded["points"] == expected_points
        assert (awarded["balance_before"], awarded["balance_after"]) == (
            120, 120 + expected_points)
        ledger = run.daemon.store.ledger("M-1001")
        assert [(e.kind, e.points, e.txn_ref) for e in ledger] == [
            ("earn", expected_points, "POS-DEMO/TX-0001")]

        again = run.tap("Ada again", member_card("C-1001"))
        assert again["balance"] == 120 + expected_points

    def test_repeated_commit_is_not_counted_twice(self, run: DemoRun) -> None:
        """The till committing the same transaction twice gets the same answer, one ledger row."""
        run.tap("Grace", member_card("C-1002"))
        first = run.sale(BASKETS[1])
        repeat = run.till.commit("TX-0001")
        assert repeat["repeated"] is True
        assert repeat["balance_after"] == first["balance_after"]
        assert len(run.daemon.store.ledger("M-1002")) == 1

    def test_unknown_blank_and_foreign_tags(self, run: DemoRun) -> None:
        """Unregistered cards are 'unknown'; blank and foreign tags are refused with a reason."""
        unknown = run.tap("unregistered", member_card("C-7777"))
        assert unknown == {"type": "member.unknown", "card_id": "C-7777",
                           "reason": "card not registered at this store"}
        blank = run.tap("blank", blank_tag())
        foreign = run.tap("foreign", foreign_tag())
        assert blank["type"] == foreign["type"] == "card.refused"
        assert blank["reason"] and foreign["reason"] and blank["reason"] != foreign["reason"]
        assert run.daemon.store.ledger() == []

    def test_daemon_keeps_running_after_refusals(self, run: DemoRun) -> None:
        """After a refused tag the next member tap is still identified."""
        run.tap("foreign", foreign_tag())
        assert run.tap("Alan", member_card("C-1003"))["member_id"] == "M-1003"


class TestDemoCommand:
    def test_demo_exits_zero_with_transcript(self) -> None:
        """`pos-loyalty demo` runs the whole loop and narrates it."""
        proc = subprocess.run(
            [sys.executable, "-m", "pos_loyalty", "demo"], capture_output=True, text=True,
            timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        out = proc.stdout
        assert "MEMBER Ada Lovelace (Gold)" in out
        assert "balance 120 ->" in out
        assert "UNKNOWN CARD C-7777" in out
        assert out.count("CARD REFUSED") == 2
        assert "latency: tap -> till" in out
        assert out.rstrip().endswith("demo OK")


class TestSunTags:
    def test_ntag424_member_card_and_replayed_copy(self, run: DemoRun) -> None:
        """A SUN member card is identified on every tap; a copy of an old URL is refused."""
        from pos_loyalty.nfc import sun
        from pos_loyalty.nfc.demo_keys import (
            DEMO_SUN_FILE_KEY,
            DEMO_SUN_MEMBER_URL,
            DEMO_SUN_META_KEY,
        )
        from pos_loyalty.nfc.sim.type4 import Ntag424Dna, Type4Tag

        uid = bytes.fromhex("04C0FFEE123480")
        card_data = sun.pack_file_data({"card": "C-1002"})
        card = Ntag424Dna(DEMO_SUN_MEMBER_URL, DEMO_SUN_META_KEY, DEMO_SUN_FILE_KEY, uid=uid,
                          counter=10, file_data=card_data)
        first = run.tap("SUN card", card)
        second = run.tap("SUN card again", card)
        assert first["member_id"] == second["member_id"] == "M-1002"
        old = sun.generate_sun(DEMO_SUN_META_KEY, DEMO_SUN_FILE_KEY, uid, 5,
                               file_data=card_data)
        record = b"".join(ndef.message_encoder([ndef.UriRecord(old.url(DEMO_SUN_MEMBER_URL))]))
        replayed = run.tap("copy of an old tap", Type4Tag(uid, record))
        assert replayed["type"] == "card.refused"
        assert "replay" in replayed["reason"], replayed
