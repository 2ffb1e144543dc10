"""What a sale, a refund and an expiry do to a member: the pure transitions the daemon stores."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pos_loyalty.errors import StoreError
from pos_loyalty.rules import (
    Basket,
    BasketLine,
    Credit,
    MemberView,
    PointsLot,
    Program,
    ReturnLine,
    expire_points,
    load_program,
    parse_program,
    quote,
    refund,
)
from pos_loyalty.store.engine_state import decode_state, encode_state
from pos_loyalty.terminal.effects import apply_entries, apply_refund, apply_sale, live_lots

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 6, 13, 15, 0)  # a Saturday
CAFE = load_program(ROOT / "examples" / "programs" / "cafe.toml")


def program(text: str) -> Program:
    return parse_program(text)


class TestApplySale:
    """A committed quote becomes the member's new state and the ledger entries to write."""

    def test_stamps_points_and_lots_follow_the_quote(self) -> None:
        """The 10th coffee uses the card up; balance, lots, spend and visits move by the sale."""
        ada = MemberView("M-1", balance=40, stamps={"coffee": 9})
        basket = Basket((BasketLine("LATTE", 1, 350, "coffee"), BasketLine("BUN", 1, 250, "food")))
        q = quote(ada, basket, NOW, CAFE)
        change = apply_sale(ada, q, NOW, CAFE, ref="P/1")
        assert change.after.stamps == {}  # 9 + 1 - 10
        assert change.points == q.points_total == 2
        assert change.after.balance == 42
        assert change.after.lots == (PointsLot(NOW.date(), 2),)
        assert (change.after.lifetime_spend, change.after.visits) == (250, 1)
        assert [(e.member_id, e.kind, e.points, e.ref) for e in change.entries] == [
            ("M-1", "earn", 2, "P/1")]

    def test_redemption_is_a_negative_redeem_entry(self) -> None:
        """Redeemed points leave as one redeem entry; the oldest lots are the ones spent."""
        bob = MemberView("M-2", balance=500, lots=(PointsLot(date(2026, 1, 5), 300),
                                                    PointsLot(date(2026, 3, 1), 200)))
        q = quote(bob, Basket((BasketLine("CAKE", 1, 1200, "food"),), redeem_points=300),
                  NOW, CAFE)
        change = apply_sale(bob, q, NOW, CAFE, ref="P/2")
        assert [(e.kind, e.points, e.ref) for e in change.entries] == [
            ("earn", 9, "P/2"), ("redeem", -300, "P/2/redeem")]
        assert change.after.balance == 500 + 9 - 300
        # 209 held: today's 9 and the March lot's 200; January's 300 were the ones spent
        assert change.after.lots == (PointsLot(date(2026, 3, 1), 200), PointsLot(NOW.date(), 9))

    def test_referrer_gets_an_earn_entry_of_their_own(self) -> None:
        """A first purchase by a referred member credits the referrer in a separate entry."""
        new = MemberView("M-3", referred_by="M-1")
        q = quote(new, Basket((BasketLine("CAKE", 1, 800, "food"),)), NOW, CAFE)
        change = apply_sale(new, q, NOW, CAFE, ref="P/3")
        assert ("M-1", "earn", 200, "P/3/referral") in [
            (e.member_id, e.kind, e.points, e.ref) for e in change.entries]
        assert change.points == q.points_total == 108  # 8 + 100 welcome, not the 200
        assert change.after.claims == {"refer": NOW.date()}

    def test_coupons_credits_membership_and_tier_perks(self) -> None:
        """Used coupons and credits are taken, issued coupons, memberships and tiers are kept."""
        prog = program('''
[program]
name = "Shop"
[[rule]]
id = "vip"
kind = "coupon"
code = "VIP5"
amount = 500
bound = "member"
[[rule]]
id = "all"
kind = "coupon"
code = "ALL1"
amount = 100
bound = "anyone"
uses = 3
[[rule]]
id = "sorry"
kind = "credit"
max_per_sale = 1
[[rule]]
id = "thr"
kind = "threshold"
every = 1000
coupon = "NEXT10"
[[rule]]
id = "next"
kind = "coupon"
code = "NEXT10"
amount = 1000
[[rule]]
id = "club"
kind = "membership"
plan = "club"
fee_sku = "CLUB"
valid_days = 365
percent = 5
[[rule]]
id = "tiers"
kind = "tiers"
period_months = 12
[[rule.levels]]
name = "Red"
[[rule.levels]]
name = "Silver"
min_spend = 1000
''')
        m = MemberView("M-4", coupons={"VIP5": 2}, coupon_uses={"ALL1": 1},
                       credits=(Credit("c1", amount=200, reason="cold coffee"),))
        basket = Basket((BasketLine("COAT", 1, 5000, "wear"), BasketLine("CLUB", 1, 1000)))
        q = quote(m, basket, NOW, prog)
        after = apply_sale(m, q, NOW, prog, ref="P/4").after
        assert after.coupons == {"VIP5": 1, "NEXT10": q.qualifying_spend // 1000}
        assert after.coupon_uses == {"ALL1": 2}
        assert after.credits == ()
        assert after.membership == "club" and after.membership_expires == date(2027, 6, 12)
        assert after.tier == "Silver"
        assert (after.period_spend, after.period_visits, after.period_start) == (
            q.qualifying_spend, 1, NOW.date())

    def test_tier_period_resets_when_it_is_over(self) -> None:
        """A sale after the tier period ended starts a new period's counters."""
        prog = program('''
[program]
name = "T"
[[rule]]
id = "tiers"
kind = "tiers"
period_months = 12
downgrade = "requalify"
[[rule.levels]]
name = "Gold"
min_spend = 100000
''')
        m = MemberView("M-5", tier="Gold", period_spend=50000, period_visits=30,
                       period_start=date(2025, 1, 1))
        q = quote(m, Basket((BasketLine("X", 1, 1000),)), NOW, prog)
        after = apply_sale(m, q, NOW, prog, ref="P/5").after
        assert (after.period_spend, after.period_visits) == (1000, 1)
        assert after.period_start == date(2026, 1, 1) and after.tier is None


class TestApplyRefund:
    """A return takes back points, stamps and spend exactly as the engine says."""

    def test_full_return_restores_balance_and_stamps(self) -> None:
        """Sale then full refund leaves the member's balance, stamps and spend as before."""
        m = MemberView("M-1", balance=100, stamps={"coffee": 3})
        basket = Basket((BasketLine("LATTE", 2, 350, "coffee"), BasketLine("BUN", 1, 250, "x")))
        q = quote(m, basket, NOW, CAFE)
        sold = apply_sale(m, q, NOW, CAFE, ref="P/1").after
        res = refund(q, [ReturnLine("LATTE", 2), ReturnLine("BUN", 1)], sold, CAFE, ref="R")
        back = apply_refund(sold, res)
        assert back.after.balance == m.balance and back.after.stamps == m.stamps
        assert back.after.lifetime_spend == 0
        assert back.points == -q.points_total


cafe_lines = st.lists(st.builds(
    BasketLine, sku=st.sampled_from(["LATTE", "FLAT", "BEANS", "BUN", "TART"]),
    qty=st.integers(1, 4), unit_price=st.integers(0, 2000),
    category=st.sampled_from(["coffee", "beans", "food", "pastry"])), min_size=1, max_size=5)


class TestSaleThenRefundProperty:
    """Whatever the basket, a sale refunded in parts leaves the stored member as before."""

    @given(cafe_lines, st.integers(0, 9), st.integers(0, 3000), st.integers(0, 3000),
           st.randoms(use_true_random=False))
    def test_partial_refunds_restore_member(self, lines: list[BasketLine], stamps: int,
                                            balance: int, redeem: int,
                                            rnd: random.Random) -> None:
        """Balance, stamps and spend after all refunds equal those before the sale."""
        m = MemberView("M-1", balance=balance, stamps={"coffee": stamps} if stamps else {})
        q = quote(m, Basket(tuple(lines), redeem_points=redeem), NOW, CAFE)
        cur = apply_sale(m, q, NOW, CAFE, ref="P/1").after
        units = [e.sku for e in q.effects for _ in range(e.qty)]
        rnd.shuffle(units)
        returned: dict[str, int] = {}
        while units:
            n = rnd.randint(1, len(units))
            take, units = units[:n], units[n:]
            chunk: dict[str, int] = {}
            for sku in take:
                chunk[sku] = chunk.get(sku, 0) + 1
            res = refund(q, [ReturnLine(k, v) for k, v in chunk.items()], cur, CAFE,
                         already_returned=returned)
            returned = dict(res.returned_after)
            cur = apply_refund(cur, res).after
        assert cur.balance == m.balance
        assert cur.stamps == m.stamps
        assert (cur.lifetime_spend, cur.period_spend) == (0, 0)


class TestExpiryAndLots:
    """Points lots stay as short as the balance they explain; expiry empties old ones."""

    def test_expired_lot_leaves_balance_and_lot_list(self) -> None:
        """Expiring a lot lowers the balance by it and drops it; a second run finds nothing."""
        m = MemberView("M-1", balance=150, lots=(PointsLot(date(2025, 10, 1), 100),
                                                  PointsLot(date(2026, 5, 1), 50)))
        entries = expire_points(m, NOW, CAFE)
        change = apply_entries(m, entries)
        assert change.points == -100 and change.after.balance == 50
        assert change.after.lots == (PointsLot(date(2026, 5, 1), 50),)
        assert expire_points(change.after, NOW, CAFE) == ()

    @given(st.lists(st.tuples(st.integers(0, 400), st.integers(0, 1000)), max_size=12),
           st.integers(-100, 5000))
    def test_live_lots_cover_the_balance_newest_first(
            self, raw: list[tuple[int, int]], balance: int) -> None:
        """Live lots sum to min(balance, all points), one per day, keeping the newest days."""
        lots = [PointsLot(date.fromordinal(date(2026, 1, 1).toordinal() + d), p) for d, p in raw]
        got = live_lots(lots, balance)
        total = sum(p for _, p in raw)
        assert sum(lot.points for lot in got) == max(0, min(balance, total))
        days = [lot.earned_on for lot in got]
        assert days == sorted(set(days)) and all(lot.points > 0 for lot in got)
        if got:
            newer = [lot for lot in lots if lot.earned_on > got[0].earned_on]
            assert all(lot in got or lot.points == 0 or
                       any(g.earned_on == lot.earned_on for g in got) for lot in newer)


dates = st.dates(date(2000, 1, 1), date(2100, 12, 31))
counts = st.dictionaries(st.text(min_size=1, max_size=8), st.integers(1, 10_000), max_size=4)
views = st.builds(
    MemberView, member_id=st.just("M-1"), balance=st.integers(-1000, 10**9),
    tier=st.none() | st.sampled_from(["Gold", "Silver"]),
    lifetime_spend=st.integers(0, 10**9), visits=st.integers(0, 10**6),
    birthday=st.none() | dates, stamps=counts, period_spend=st.integers(0, 10**9),
    period_visits=st.integers(0, 10**6), period_start=st.none() | dates,
    coupons=counts, coupon_uses=counts,
    segments=st.frozensets(st.text(min_size=1, max_size=6), max_size=3),
    credits=st.lists(st.builds(Credit, credit_id=st.text(min_size=1, max_size=6),
                               amount=st.integers(0, 10**5), percent_bp=st.integers(0, 10000),
                               reason=st.text(max_size=10), expires=st.none() | dates),
                     max_size=2).map(tuple),
    lots=st.lists(st.builds(PointsLot, dates, st.integers(1, 10**6)), max_size=3).map(tuple),
    claims=st.dictionaries(st.text(min_size=1, max_size=6), dates, max_size=3),
    referred_by=st.none() | st.just("M-9"),
)


class TestStateCodec:
    """members.state round-trips every MemberView the engine can hold."""

    @given(views)
    def test_round_trip(self, view: MemberView) -> None:
        """Decoding what was encoded, with the columns beside it, gives the same view."""
        if view.membership is None:
            view = replace(view, membership_expires=None)
        cols = {"member_id": view.member_id, "balance": view.balance, "tier": view.tier,
                "lifetime_spend": view.lifetime_spend, "visits": view.visits,
                "birthday": view.birthday}
        assert decode_state(encode_state(view), cols) == view

    @pytest.mark.parametrize("raw", ['{"stamps": ', '[1]', '{"stamps": {"c": "x"}}',
                                     '{"balance": 5}'])
    def test_damaged_state_is_a_store_error(self, raw: str) -> None:
        """A damaged document is refused with the member named, never read as empty."""
        with pytest.raises(StoreError, match="member M-1"):
            decode_state(raw, {"member_id": "M-1"})
