"""The full rules engine at the till: a program file, nfcpy udp taps, protocol v1 over a real pty.

Each test runs the daemon with examples/programs/cafe.toml (plus a tier rule where tiers
matter), taps emulated member cards and drives the reference till; the store is checked
afterwards for exactly one write of everything.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from pos_loyalty.config import TerminalConfig
from pos_loyalty.errors import SerialLinkError
from pos_loyalty.nfc.sim.cards import member_card
from pos_loyalty.nfc.sim.emulator import TagEmulator
from pos_loyalty.pos.pty import PtyBridge
from pos_loyalty.pos.till import SimulatedTill
from pos_loyalty.rules import MemberView, PointsLot, Quote
from pos_loyalty.terminal import daemon as daemon_module
from pos_loyalty.terminal.daemon import TerminalDaemon
from tests.tillsales import seed_member_state

ROOT = Path(__file__).resolve().parents[2]
CAFE = (ROOT / "examples" / "programs" / "cafe.toml").read_text()
TIERS = '''
[[rule]]
id = "tiers"
kind = "tiers"
period_months = 12
[[rule.levels]]
name = "Member"
[[rule.levels]]
name = "Silver"
min_spend = 50000
earn_percent = 150
[[rule.levels]]
name = "Gold"
min_spend = 150000
earn_percent = 200
'''
TAP_ANSWERS = {"member.identified", "member.unknown", "card.refused"}
REMOVAL_SETTLE_S = 0.4  # nfcpy's presence check notices a removed card after ~0.3 s


def line(sku: str, qty: int, price: int, category: str) -> dict[str, Any]:
    return {"sku": sku, "qty": qty, "unit_price": price, "category": category}


class Till:
    """The daemon on a program file, an RF field with cards, and the reference till."""

    def __init__(self, tmp: Path, rf: TagEmulator, bridge: PtyBridge, program: str) -> None:
        prog = tmp / "program.toml"
        prog.write_text(program)
        config = TerminalConfig(
            terminal_id="T-TEST", data_dir=tmp, reader_path=f"udp:127.0.0.1:{rf.port}",
            debounce_s=0.0, serial_port=bridge.terminal_path,
            db_url=f"sqlite:///{tmp / 'terminal.db'}", program_file=str(prog),
            simulation=True)
        self.rf = rf
        self.config = config
        self.daemon = TerminalDaemon(config)
        self.store = self.daemon.store
        self.till = SimulatedTill(bridge.till_path, pos_id="POS-1")
        self._thread = threading.Thread(target=self.daemon.run, daemon=True)

    def member(self, member_id: str, card_id: str, *, balance: int = 0, tier: str | None = None,
               **state: Any) -> None:
        self.store.add_member(member_id, member_id, card_id=card_id, tier=tier, balance=balance)
        view = self.store.member_view(member_id)
        assert view is not None
        seed_member_state(self.store, replace(view, **state))

    def start(self) -> None:
        self.daemon.start()
        self._thread.start()
        self.till.start()
        self.till.wait_link_up(timeout=10)

    def close(self) -> None:
        self.till.close()
        self.daemon.stop()
        self._thread.join(timeout=10)

    def restart_daemon(self) -> None:
        """Stop the daemon (its session is lost) and start a new one on the same store."""
        self.daemon.stop()
        self._thread.join(timeout=10)
        self.daemon = TerminalDaemon(self.config)
        self.store = self.daemon.store
        self._thread = threading.Thread(target=self.daemon.run, daemon=True)
        self.daemon.start()
        self._thread.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the new terminal's hello brings the link back
            try:
                if self.till.status("PING").get("type") == "txn.status":
                    return
            except SerialLinkError:
                continue
        raise AssertionError("the till link did not come back after the restart")

    def tap(self, card_id: str) -> dict[str, Any]:
        time.sleep(REMOVAL_SETTLE_S)
        self.rf.present(member_card(card_id))
        try:
            return self.till.next_message(TAP_ANSWERS, timeout=10)
        finally:
            self.rf.remove()

    def view(self, member_id: str) -> MemberView:
        view = self.store.member_view(member_id)
        assert view is not None
        return view

    def ledger(self, member_id: str) -> list[tuple[str, int, str]]:
        return [(e.kind, e.points, e.txn_ref) for e in self.store.ledger(member_id)]

    def stored_quote(self, txn_id: str) -> Quote:
        sale = self.store.sale_record("POS-1", txn_id)
        assert sale is not None and sale.quote is not None
        return Quote.from_dict(sale.quote)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[tuple[TagEmulator, PtyBridge, Path]]:
    with TagEmulator() as rf, PtyBridge() as bridge:
        yield rf, bridge, tmp_path


def started(rig: tuple[TagEmulator, PtyBridge, Path], program: str, *members: dict[str, Any]
            ) -> Till:
    rf, bridge, tmp = rig
    t = Till(tmp, rf, bridge, program)
    for m in members:
        t.member(**m)
    t.start()
    return t


@pytest.fixture
def cafe(rig: tuple[TagEmulator, PtyBridge, Path]) -> Iterator[Till]:
    t = started(rig, CAFE + TIERS,
                {"member_id": "M-ADA", "card_id": "C-1001", "balance": 500,
                 "stamps": {"coffee": 9}},
                {"member_id": "M-GOLD", "card_id": "C-1002", "balance": 0, "tier": "Gold"},
                {"member_id": "M-NEW", "card_id": "C-1003", "balance": 0, "tier": "Member"},
                {"member_id": "M-OLD", "card_id": "C-1004", "balance": 300,
                 "lots": (PointsLot(date(2020, 1, 1), 200), PointsLot(date.today(), 100))},
                {"member_id": "M-SPEND", "card_id": "C-1005", "balance": 60})
    try:
        yield t
    finally:
        t.close()


class TestStampsAndTiers:
    """Stamp cards and tier multipliers from the program file reach the till and the store."""

    def test_tenth_coffee_is_free_and_uses_the_card(self, cafe: Till) -> None:
        """A member holding 9 stamps gets the 10th coffee free; the card restarts at 0."""
        assert cafe.tap("C-1001")["member_id"] == "M-ADA"
        q = cafe.till.send_basket("T1", [line("LATTE", 1, 350, "coffee"),
                                         line("BUN", 1, 250, "food")])
        assert q["type"] == "quote"
        assert {"program": "Corner Cafe", "kind": "discount", "value": 350,
                "text": "10th coffee free: -3.50"} in q["lines"]
        assert (q["discount_total"], q["total_due"], q["points_total"]) == (350, 250, 2)
        awarded = cafe.till.commit("T1")
        assert (awarded["points"], awarded["balance_before"], awarded["balance_after"]) == (
            2, 500, 502)
        assert cafe.view("M-ADA").stamps == {}
        cafe.tap("C-1001")
        q2 = cafe.till.send_basket("T2", [line("LATTE", 1, 350, "coffee")])
        assert q2["discount_total"] == 0  # one stamp now, no reward
        cafe.till.commit("T2")
        assert cafe.view("M-ADA").stamps == {"coffee": 1}

    def test_gold_member_earns_the_tier_multiplier(self, cafe: Till) -> None:
        """Gold x2 doubles the base points; a basic member earns the base only."""
        cafe.tap("C-1002")
        gold = cafe.till.send_basket("T1", [line("CAKE", 1, 1000, "food")])
        assert [(ln["kind"], ln["value"], ln["text"]) for ln in gold["lines"]] == [
            ("points", 10, "+10 pts (1 pt per 1.00)"), ("points", 10, "Gold x2: +10 pts")]
        assert cafe.till.commit("T1")["balance_after"] == 20
        cafe.tap("C-1003")
        plain = cafe.till.send_basket("T2", [line("CAKE", 1, 1000, "food")])
        assert plain["points_total"] == 10
        assert cafe.till.commit("T2")["balance_after"] == 10
        assert cafe.ledger("M-GOLD") == [("earn", 20, "POS-1/T1")]


class TestRedemption:
    """Points are redeemed on the quote and charged once, at the commit."""

    def test_redeem_then_commit_lowers_the_balance_once(self, cafe: Till) -> None:
        """redeem.request re-quotes with a redeem line; commit writes it; a repeat adds nothing."""
        cafe.tap("C-1001")
        cafe.till.send_basket("T1", [line("CAKE", 1, 1200, "food")])
        q = cafe.till.redeem("T1", 300)
        assert q["type"] == "quote"
        assert {"program": "Corner Cafe", "kind": "redeem", "value": 300,
                "text": "300 pts redeemed: -3.00"} in q["lines"]
        assert (q["total_due"], q["points_total"]) == (900, 9)
        assert cafe.view("M-ADA").balance == 500  # nothing charged before the commit
        first = cafe.till.commit("T1")
        again = cafe.till.commit("T1")
        assert (first["points"], first["balance_before"], first["balance_after"]) == (
            -291, 500, 209)
        assert again == {**first, "repeated": True}
        assert cafe.ledger("M-ADA") == [("earn", 9, "POS-1/T1"),
                                        ("redeem", -300, "POS-1/T1/redeem")]
        assert cafe.tap("C-1001")["balance"] == 209

    def test_redemption_refused_with_a_reason(self, cafe: Till) -> None:
        """Too few points is refused with the reason; asking beyond the balance is cut to it."""
        cafe.tap("C-1002")
        cafe.till.send_basket("T1", [line("CAKE", 1, 1000, "food")])
        refused = cafe.till.redeem("T1", 200)
        assert refused["type"] == "error" and refused["code"] == "refused"
        assert refused["message"] == ("cannot redeem 200 pts: balance 0 pts is below the "
                                      "minimum 100 pts")
        cafe.tap("C-1001")
        cafe.till.send_basket("T2", [line("CAKE", 1, 1000, "food")])
        partial = cafe.till.redeem("T2", 5000)
        redeem = [ln for ln in partial["lines"] if ln["kind"] == "redeem"]
        assert redeem and redeem[0]["value"] == 500  # the balance: 500 pts = 5.00
        assert "partially granted: balance is 500 pts" in partial["summary"]

    def test_redeem_without_basket_or_member_is_an_error(self, cafe: Till) -> None:
        """A redemption needs an open basket and a member card on it."""
        nothing = cafe.till.redeem("T9", 100)
        assert (nothing["type"], nothing["code"]) == ("error", "unknown_txn")
        cafe.till.send_basket("T1", [line("CAKE", 1, 1000, "food")])  # nobody tapped
        anon = cafe.till.redeem("T1", 100)
        assert (anon["type"], anon["code"]) == ("error", "refused")
        assert "tap the card" in anon["message"]

    def test_commit_refused_when_points_moved_since_the_quote(self, cafe: Till) -> None:
        """Two open sales redeeming the same points: the second commit is refused, not overdrawn."""
        cafe.tap("C-1001")
        cafe.till.send_basket("A", [line("CAKE", 1, 1000, "food")])
        cafe.till.redeem("A", 400)
        cafe.till.send_basket("B", [line("CAKE", 1, 1000, "food")])
        cafe.till.redeem("B", 400)
        assert cafe.till.commit("B")["balance_after"] == 500 - 400 + 6
        late = cafe.till.commit("A")
        assert (late["type"], late["code"]) == ("error", "refused")
        assert "send the basket again" in late["message"]
        assert cafe.view("M-ADA").balance == 106
        requote = cafe.till.send_basket("A", [line("CAKE", 1, 1000, "food")])
        # the redemption asked for stays on the sale, cut to what the balance now allows
        assert [ln["value"] for ln in requote["lines"] if ln["kind"] == "redeem"] == [106]
        assert cafe.till.commit("A")["balance_after"] == 106 - 106 + 8


class TestOfflinePolicy:
    """A terminal enrolled with central redeems unconfirmed points only within its policy."""

    def test_redemption_needs_a_confirmed_balance_and_stays_under_the_cap(
            self, cafe: Till) -> None:
        """Never-synced balances are refused; after a sync, redemption stops at the member cap."""
        cafe.store.set_enrollment(server_url="http://127.0.0.1:9", terminal_id="T-TEST",
                                  store_id="S-1", credential="c")
        cafe.tap("C-1001")
        cafe.till.send_basket("T1", [line("CAKE", 1, 1000, "food")])
        never = cafe.till.redeem("T1", 100)
        assert (never["type"], never["code"]) == ("error", "refused")
        assert "not yet confirmed by central" in never["message"]
        now = datetime.now(UTC).replace(tzinfo=None)
        cafe.store.apply_pull("balances", ("member_id", "balance"), [("M-ADA", 500)],
                              after="1", now=now)
        cafe.store.record_sync(now=now)
        assert cafe.till.redeem("T1", 300)["type"] == "quote"
        assert cafe.till.commit("T1")["balance_after"] == 500 - 300 + 7
        cafe.tap("C-1001")
        cafe.till.send_basket("T2", [line("CAKE", 1, 1000, "food")])
        capped = cafe.till.redeem("T2", 201)  # 300 unconfirmed already, cap 500
        assert (capped["type"], capped["code"]) == ("error", "refused")
        assert "offline redemption limit for this member is 500" in capped["message"]
        assert cafe.till.redeem("T2", 200)["type"] == "quote"  # exactly up to the cap


class TestRefundAndVoid:
    """Refunds reverse exactly what the returned lines earned; voids drop open sales."""

    def test_refund_reverses_the_returned_lines_only(self, cafe: Till) -> None:
        """Each refund takes back that line's points from the stored quote, once per refund id."""
        cafe.tap("C-1003")
        cafe.till.send_basket("T1", [line("BEANS", 2, 1000, "beans"),
                                     line("BUN", 1, 250, "food")])
        sold = cafe.till.commit("T1")
        effects = {e.sku: e.points for e in cafe.stored_quote("T1").effects}
        assert sold["points"] == sum(effects.values()) == 42  # beans x2: 40 + bun 2.5
        one = cafe.till.refund("T1", "R1", [{"sku": "BEANS", "qty": 1}])
        assert one["points"] == -((effects["BEANS"] + 1) // 2)  # half the line, rounded up
        assert cafe.till.refund("T1", "R1", [{"sku": "BEANS", "qty": 1}]) == {
            **one, "repeated": True}
        rest = cafe.till.refund("T1", "R2", [{"sku": "BEANS", "qty": 1},
                                             {"sku": "BUN", "qty": 1}])
        assert one["points"] + rest["points"] == -sold["points"]
        assert rest["balance_after"] == 0
        assert [k for k, _, _ in cafe.ledger("M-NEW")] == ["earn", "reversal", "reversal"]
        status = cafe.till.status("T1")
        assert (status["state"], status["points"], status["balance_after"]) == (
            "refunded", 0, 0)
        over = cafe.till.refund("T1", "R3", [{"sku": "BUN", "qty": 1}])
        assert (over["type"], over["code"]) == ("error", "refused")
        assert "1 sold, 1 already returned" in over["message"]

    def test_refund_gives_stamps_and_redeemed_points_back(self, cafe: Till) -> None:
        """Returning a free coffee takes its stamps back; redeemed points on it come back."""
        cafe.tap("C-1001")
        cafe.till.send_basket("T1", [line("LATTE", 1, 350, "coffee"),
                                     line("CAKE", 1, 1000, "food")])
        cafe.till.redeem("T1", 200)
        sold = cafe.till.commit("T1")
        assert cafe.view("M-ADA").stamps == {}
        back = cafe.till.refund("T1", "R1", [{"sku": "LATTE", "qty": 1},
                                             {"sku": "CAKE", "qty": 1}])
        assert back["points"] == -sold["points"]
        assert back["balance_after"] == 500
        assert cafe.view("M-ADA").stamps == {"coffee": 9}

    def test_longest_ids_fit_the_ledger_reference(self, cafe: Till) -> None:
        """64-character txn and refund ids give distinct ledger refs central accepts (<= 140)."""
        txn = "T" * 64
        cafe.tap("C-1003")
        cafe.till.send_basket(txn, [line("BEANS", 2, 1000, "beans")])
        cafe.till.commit(txn)
        for refund_id in ("A" * 63 + "1", "A" * 63 + "2"):
            back = cafe.till.refund(txn, refund_id, [{"sku": "BEANS", "qty": 1}])
            assert back["type"] == "points.awarded" and back["points"] == -20
        refs = [ref for _, _, ref in cafe.ledger("M-NEW")]
        assert len(refs) == len(set(refs)) == 3
        assert all(len(ref) <= 140 for ref in refs)

    def test_spent_points_are_paid_from_the_refund(self, cafe: Till) -> None:
        """Points already spent are bought back from the refund money, never kept."""
        cafe.tap("C-1005")
        cafe.till.send_basket("T1", [line("BEANS", 2, 1000, "beans")])
        assert cafe.till.commit("T1")["balance_after"] == 60 + 40  # beans earn x2
        cafe.tap("C-1005")
        cafe.till.send_basket("T2", [line("CAKE", 1, 1000, "food")])
        cafe.till.redeem("T2", 100)
        assert cafe.till.commit("T2")["balance_after"] == 9  # 100 spent, 9 earned on 9.00
        back = cafe.till.refund("T1", "R1", [{"sku": "BEANS", "qty": 2}])
        # 40 to take back, 9 held: 31 pts bought back for 0.31 kept from the 20.00 refund
        assert (back["points"], back["balance_after"], back["deducted"]) == (-9, 0, 31)
        assert [(k, p) for k, p, ref in cafe.ledger("M-SPEND") if "refund" in ref] == [
            ("reversal", -40), ("reversal", 31)]

    def test_void_open_refuse_committed_and_status(self, cafe: Till) -> None:
        """An open sale is voided (repeatably), a committed one is refused, status says which."""
        assert cafe.till.status("T1")["state"] == "unknown"
        cafe.tap("C-1001")
        cafe.till.send_basket("T1", [line("CAKE", 1, 1000, "food")])
        cafe.till.redeem("T1", 100)
        assert cafe.till.status("T1")["state"] == "open"
        voided = cafe.till.void("T1")
        assert (voided["state"], voided["points"], voided["balance_after"]) == ("voided", 0, 500)
        assert cafe.till.void("T1") == voided
        assert cafe.till.status("T1")["state"] == "voided"
        gone = cafe.till.commit("T1")
        assert (gone["type"], gone["code"]) == ("error", "unknown_txn")
        assert cafe.store.ledger("M-ADA") == [] and cafe.view("M-ADA").balance == 500
        cafe.tap("C-1001")  # the void ended the customer's turn at the till
        cafe.till.send_basket("T2", [line("CAKE", 1, 1000, "food")])
        cafe.till.commit("T2")
        refused = cafe.till.void("T2")
        assert (refused["type"], refused["code"]) == ("error", "committed")
        assert "refund" in refused["message"]
        status = cafe.till.status("T2")
        assert (status["state"], status["points"], status["balance_after"]) == (
            "committed", 10, 510)
        changed = cafe.till.send_basket("T2", [line("CAKE", 2, 1000, "food")])
        assert (changed["type"], changed["code"]) == ("error", "committed")

    def test_sale_without_a_member(self, cafe: Till) -> None:
        """A sale nobody tapped for is committed with no member and no balance."""
        cafe.till.send_basket("T1", [line("CAKE", 1, 1000, "food")])
        awarded = cafe.till.commit("T1")
        assert (awarded["member_id"], awarded["points"], awarded["balance_before"],
                awarded["balance_after"]) == (None, 0, None, None)
        assert cafe.store.sale_record("POS-1", "T1") is not None
        assert [e for e in cafe.store.ledger() if e.txn_ref.startswith("POS-1/")] == []


class TestExpiry:
    """The daemon expires points past their validity when it starts and then every day."""

    def test_old_lot_expired_before_the_first_tap(self, cafe: Till) -> None:
        """Points earned in 2020 on a 6-month rolling program are gone; recent ones stay."""
        assert cafe.tap("C-1004")["balance"] == 100
        assert cafe.ledger("M-OLD") == [("expire", -200, "expire:M-OLD:2020-01-01")]
        assert cafe.daemon.service.run_expiry() == 0
        assert cafe.view("M-OLD").lots == (PointsLot(date.today(), 100),)


class TestRestart:
    """What was committed survives a daemon restart; what was only open does not."""

    def test_status_and_refund_after_restart(self, cafe: Till) -> None:
        """After a restart a committed sale is still committed and refundable from its quote,
        and the sale that was open is still open, for its member."""
        cafe.tap("C-1001")
        cafe.till.send_basket("T1", [line("LATTE", 1, 350, "coffee"),
                                     line("CAKE", 1, 1000, "food")])
        sold = cafe.till.commit("T1")
        cafe.tap("C-1002")
        cafe.till.send_basket("T2", [line("CAKE", 1, 1000, "food")])
        cafe.restart_daemon()
        committed = cafe.till.status("T1")
        assert (committed["state"], committed["points"], committed["balance_after"]) == (
            "committed", sold["points"], sold["balance_after"])
        assert cafe.till.status("T2")["state"] == "open"  # kept across the restart
        t2 = cafe.till.commit("T2")
        assert (t2["type"], t2["member_id"]) == ("points.awarded", "M-GOLD"), t2
        back = cafe.till.refund("T1", "R1", [{"sku": "LATTE", "qty": 1}])
        assert back["type"] == "points.awarded"
        assert cafe.view("M-ADA").stamps == {"coffee": 9}
        assert cafe.till.commit("T1") == {**sold, "repeated": True}

    def test_expiry_runs_again_on_schedule(self, rig: tuple[TagEmulator, PtyBridge, Path],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
        """Points that fall due while the daemon runs expire at the next scheduled run."""
        monkeypatch.setattr(daemon_module, "EXPIRY_INTERVAL_S", 0.2)  # "daily", sped up
        t = started(rig, CAFE)
        try:
            t.member("M-LATE", "C-2001", balance=80,
                     lots=(PointsLot(date(2021, 5, 1), 80),))
            deadline = time.monotonic() + 20
            while not t.ledger("M-LATE") and time.monotonic() < deadline:
                time.sleep(0.05)
            assert t.ledger("M-LATE") == [("expire", -80, "expire:M-LATE:2021-05-01")]
            assert t.tap("C-2001")["balance"] == 0
        finally:
            t.close()
