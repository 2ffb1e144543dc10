"""Points go to the member the till was shown, end to end over nfcpy udp and a real pty.

The scenarios of docs/pos-protocol.md section 6.4: two cards in one sale, a tap after a
commit, a member taken off a sale, a redemption cancelled; the ledger says who got what.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pos_loyalty.demo import DemoRun
from pos_loyalty.nfc.sim.cards import member_card
from pos_loyalty.nfc.sim.emulator import TagEmulator
from pos_loyalty.pos.pty import PtyBridge
from pos_loyalty.rules import load_program

ROOT = Path(__file__).resolve().parents[2]

ADA, GRACE = "M-1001", "M-1002"
LINES = [{"sku": "BEANS", "qty": 1, "unit_price": 1000, "category": "retail"}]


@pytest.fixture
def run(tmp_path: Path) -> Iterator[DemoRun]:
    with TagEmulator() as rf, PtyBridge() as bridge:
        demo = DemoRun(lambda _line: None, tmp_path, rf, bridge)
        demo.start()
        try:
            yield demo
        finally:
            demo.close()


def tap(run: DemoRun, card_id: str) -> dict[str, Any]:
    msg = run.tap(card_id, member_card(card_id))
    assert msg["type"] == "member.identified", msg
    return msg


def ledger(run: DemoRun, member_id: str) -> list[tuple[str, int, str]]:
    return [(e.kind, e.points, e.txn_ref) for e in run.daemon.store.ledger(member_id)]


class TestTwoCardsInOneSale:
    def test_second_tap_is_the_tills_choice_and_the_chosen_member_earns(
            self, run: DemoRun) -> None:
        """Ada then Grace tap during T-1: the commit is refused until the till names the
        member; it names Grace (the one on its screen), Grace earns, Ada gets nothing."""
        tap(run, "C-1001")
        assert run.till.send_basket("T-1", LINES)["member_id"] == ADA
        tap(run, "C-1002")
        refused = run.till.commit("T-1")
        assert (refused["type"], refused["code"]) == ("error", "member_changed")
        assert "Grace Hopper (M-1002)" in refused["message"]
        assert "Ada Lovelace (M-1001)" in refused["message"]
        assert ledger(run, ADA) == [] and ledger(run, GRACE) == []
        quote = run.till.send_basket("T-1", LINES, member_id=GRACE)
        assert (quote["member_id"], quote["points_total"]) == (GRACE, 10)
        awarded = run.till.commit("T-1")
        assert (awarded["member_id"], awarded["points"], awarded["balance_after"]) == (
            GRACE, 10, 50)
        assert ledger(run, GRACE) == [("earn", 10, "POS-DEMO/T-1")]
        assert ledger(run, ADA) == []

    def test_till_keeps_the_first_member(self, run: DemoRun) -> None:
        """Naming Ada again after Grace's tap keeps the sale Ada's."""
        tap(run, "C-1001")
        run.till.send_basket("T-1", LINES)
        tap(run, "C-1002")
        assert run.till.send_basket("T-1", LINES, member_id=ADA)["member_id"] == ADA
        assert run.till.commit("T-1")["member_id"] == ADA
        assert ledger(run, ADA) == [("earn", 10, "POS-DEMO/T-1")] and ledger(run, GRACE) == []

    def test_a_member_who_never_tapped_cannot_be_named(self, run: DemoRun) -> None:
        """The till cannot put points on a member the terminal did not identify."""
        tap(run, "C-1001")
        answer = run.till.send_basket("T-1", LINES, member_id="M-1003")
        assert (answer["type"], answer["code"]) == ("error", "unknown_member")
        assert run.till.status("T-1")["state"] == "unknown"  # nothing was opened


class TestAfterAndDuringASale:
    def test_tap_after_commit_starts_afresh(self, run: DemoRun) -> None:
        """After Ada's sale is committed, Grace's tap is the next sale's member."""
        tap(run, "C-1001")
        run.till.send_basket("T-1", LINES)
        assert run.till.commit("T-1")["member_id"] == ADA
        tap(run, "C-1002")
        assert run.till.send_basket("T-2", LINES)["member_id"] == GRACE
        assert run.till.commit("T-2")["member_id"] == GRACE
        assert ledger(run, ADA) == [("earn", 10, "POS-DEMO/T-1")]
        assert ledger(run, GRACE) == [("earn", 10, "POS-DEMO/T-2")]

    def test_member_taken_off_earns_nothing_and_quote_says_so(self, run: DemoRun) -> None:
        """member_id null takes Ada off: the quote shows no points and none are awarded."""
        tap(run, "C-1001")
        run.till.send_basket("T-1", LINES)
        off = run.till.send_basket("T-1", LINES, member_id=None)
        assert (off["member_id"], off["points_total"]) == (None, 0)
        assert [ln["kind"] for ln in off["lines"]] == []
        awarded = run.till.commit("T-1")
        assert (awarded["member_id"], awarded["points"], awarded["balance_after"]) == (
            None, 0, None)
        assert ledger(run, ADA) == []
        # the next sale is nobody's until a card is tapped again
        assert run.till.send_basket("T-2", LINES)["member_id"] is None

    def test_cancelled_redemption_is_not_charged(self, run: DemoRun) -> None:
        """Redeeming 100 points and then cancelling (points 0) leaves only the earn."""
        run.daemon.service.program = load_program(ROOT / "examples" / "programs" / "cafe.toml")
        tap(run, "C-1001")
        run.till.send_basket("T-1", LINES)
        redeemed = run.till.redeem("T-1", 100)
        assert redeemed["type"] == "quote", redeemed
        assert [ln["kind"] for ln in redeemed["lines"]].count("redeem") == 1
        cancelled = run.till.redeem("T-1", 0)
        assert "redeem" not in [ln["kind"] for ln in cancelled["lines"]]
        assert cancelled["total_due"] == 1000
        awarded = run.till.commit("T-1")
        earned = cancelled["points_total"]
        assert earned > 0
        assert (awarded["points"], awarded["balance_after"]) == (earned, 120 + earned)
        assert ledger(run, ADA) == [("earn", earned, "POS-DEMO/T-1")]
