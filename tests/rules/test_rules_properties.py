"""Properties of the engine that must hold for any basket, member and program."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rules_helpers import program

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
    quote,
    refund,
)
from pos_loyalty.terminal.effects import apply_sale

EXAMPLES = Path(__file__).parents[2] / "examples" / "programs"
PROGRAMS = [load_program(p) for p in sorted(EXAMPLES.glob("*.toml"))]
TODAY = datetime(2026, 11, 28, 15, 30)  # a Saturday, inside the clothing chain's sale

# A points program that promises splitting a sale never pays: per-sale rewards are
# limited to once a day, everything else is computed on totals and rounded down.
SPLIT_SAFE = program("""
    [[rule]]
    id = "base"
    kind = "earn"
    label = "1 pt per 1.00"
    points = 1
    per = 100
    [rule.multipliers]
    beans = 200
    [[rule]]
    id = "items"
    kind = "earn"
    per_item = 1
    categories = ["coffee"]
    [[rule]]
    id = "visit"
    kind = "earn"
    per_visit = 10
    limit = "day"
    [[rule]]
    id = "tiers"
    kind = "tiers"
    [[rule.levels]]
    name = "Red"
    [[rule.levels]]
    name = "Silver"
    min_spend = 50000
    earn_percent = 150
    [[rule]]
    id = "weekend"
    kind = "multiplier"
    percent = 125
    weekdays = ["sat"]
    [[rule]]
    id = "big-basket"
    kind = "bonus"
    points = 50
    min_spend = 5000
    limit = "day"
    [[rule]]
    id = "every-50"
    kind = "threshold"
    every = 5000
    points = 25
    [[rule]]
    id = "card"
    kind = "stamps"
    card = "coffee"
    every = 5
    categories = ["coffee"]
""")

CATS = ["coffee", "beans", "pastry", "girls-clothing", "denim", "gift-card", "coffee-beans"]
line_st = st.builds(BasketLine, sku=st.sampled_from(["A", "B", "C", "D", "E", "F"]),
                    qty=st.integers(1, 6), unit_price=st.integers(0, 8000),
                    category=st.sampled_from(CATS))
lines_st = st.lists(line_st, min_size=0, max_size=12).map(tuple)
member_st = st.builds(
    MemberView,
    member_id=st.just("M1"),
    balance=st.integers(0, 20000),
    tier=st.sampled_from([None, "Red", "Silver", "Gold"]),
    lifetime_spend=st.integers(0, 300000),
    visits=st.integers(0, 3),
    birthday=st.sampled_from([None, date(1990, 11, 28), date(1985, 2, 3)]),
    stamps=st.dictionaries(st.just("coffee"), st.integers(0, 12)),
    period_spend=st.integers(0, 200000),
    coupons=st.dictionaries(st.sampled_from(["GIRLS-10", "FREE-ITEM", "GIRLS10-15"]),
                            st.integers(0, 2)),
    segments=st.frozensets(st.sampled_from(["vip", "lapsed"])),
    credits=st.lists(st.builds(Credit, credit_id=st.sampled_from(["c1", "c2"]),
                               amount=st.integers(0, 3000),
                               percent_bp=st.integers(0, 5000)), max_size=2).map(tuple),
    referred_by=st.sampled_from([None, "M0"]),
    membership=st.sampled_from([None, "Plus"]),
    membership_expires=st.sampled_from([None, date(2027, 1, 1)]),
)


def returns_of(b: Basket) -> list[ReturnLine]:
    qty: dict[str, int] = {}
    for ln in b.lines:
        qty[ln.sku] = qty.get(ln.sku, 0) + ln.qty
    return [ReturnLine(s, q) for s, q in qty.items()]


class TestQuoteProperties:
    """Quotes are deterministic, never negative, and their parts add up."""

    @settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
    @given(st.sampled_from(PROGRAMS), member_st, lines_st, st.integers(0, 20000))
    def test_deterministic_and_consistent(self, p: Program, m: MemberView,
                                          lines: tuple[BasketLine, ...], redeem: int) -> None:
        """The same inputs give the same quote; totals are non-negative and add up."""
        b = Basket(lines, merchant_id="BAKERY-1", redeem_points=redeem)
        q = quote(m, b, TODAY, p)
        assert q == quote(m, b, TODAY, p)
        assert q.to_dict() == quote(m, b, TODAY, p).to_dict()
        assert q.discount_total >= 0 and q.points_total >= 0 and q.total_due >= 0
        assert q.redeem_points <= m.balance
        assert all(e.paid >= 0 and e.points >= 0 for e in q.effects)
        assert sum(e.paid for e in q.effects) == q.total_due
        assert sum(e.points for e in q.effects) == q.points_total
        assert sum(e.discount for e in q.effects) == q.discounts
        assert sum(e.redeem_value for e in q.effects) == q.discount_total - q.discounts
        assert q.cost == q.discounts + q.points_liability + q.perks_value

    @settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
    @given(st.sampled_from(PROGRAMS), member_st, lines_st, st.integers(0, 20000))
    def test_sale_then_full_refund_restores_balance_and_stamps(
            self, p: Program, m: MemberView, lines: tuple[BasketLine, ...], redeem: int) -> None:
        """After a sale and the refund of all of it, balance and stamps are as before."""
        b = Basket(lines, redeem_points=redeem)
        q = quote(m, b, TODAY, p)
        after = replace(m, balance=m.balance - q.redeem_points + q.points_total,
                        stamps=dict(q.stamps_after) or m.stamps)
        r = refund(q, returns_of(b), after, p)
        assert r.balance_after == m.balance
        assert r.money_refund == q.total_due and r.deducted == 0
        stamps = dict(after.stamps)
        for card, d in r.stamps:
            stamps[card] = stamps.get(card, 0) + d
        for card, held in stamps.items():
            assert held == m.stamps.get(card, 0)


class TestSplitting:
    """Splitting a basket into two sales never earns more points than one sale."""

    @settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
    @given(member_st, lines_st, st.data())
    def test_split_never_earns_more(self, m: MemberView, lines: tuple[BasketLine, ...],
                                    data: st.DataObject) -> None:
        """Two sales of the two halves earn at most what the whole basket earns."""
        mask = data.draw(st.lists(st.booleans(), min_size=len(lines), max_size=len(lines)))
        first = tuple(ln for ln, k in zip(lines, mask, strict=True) if k)
        second = tuple(ln for ln, k in zip(lines, mask, strict=True) if not k)
        whole = quote(m, Basket(lines), TODAY, SPLIT_SAFE)
        earned = 0
        member = m
        for part in (first, second):
            if not part:
                continue
            q = quote(member, Basket(part), TODAY, SPLIT_SAFE)
            earned += q.points_total
            member = replace(
                member, balance=member.balance + q.points_total,
                lifetime_spend=member.lifetime_spend + q.qualifying_spend,
                period_spend=member.period_spend + q.qualifying_spend,
                visits=member.visits + 1, stamps=dict(q.stamps_after) or member.stamps,
                claims={**member.claims, **dict.fromkeys(q.claims, TODAY.date())})
        assert earned <= whole.points_total


EXPIRING = program("""
    [[rule]]
    kind = "earn"
    points = 1
    per = 100
    [redemption]
    points = 100
    value = 100
    [expiry]
    mode = "rolling"
    months = 6
""")

lots_st = st.lists(st.builds(PointsLot, earned_on=st.dates(date(2025, 1, 1), date(2026, 11, 28)),
                             points=st.integers(1, 5000)), max_size=6).map(tuple)


class TestPromises:
    """Whatever the lots, the time and the request: no expired point is spent, no credit
    is lost."""

    @settings(max_examples=200)
    @given(lots_st, st.integers(0, 30000), st.integers(0, 30000),
           st.datetimes(datetime(2025, 6, 1), datetime(2027, 1, 1)))
    def test_expired_point_never_redeemable(self, lots: tuple[PointsLot, ...], spent: int,
                                            redeem: int, now: datetime) -> None:
        """Redeemed points never exceed the points whose last day is today or later."""
        balance = max(0, sum(lot.points for lot in lots) - spent)
        m = MemberView("m", balance=balance, lots=lots)
        q = quote(m, Basket((BasketLine("a", 1, 100_000),), redeem_points=redeem), now,
                  EXPIRING)
        valid = balance - sum(-e.points for e in expire_points(m, now, EXPIRING))
        assert q.redeem_points <= valid
        assert q.expired_points == balance - valid
        if redeem <= valid:
            assert q.redeem_points == redeem

    @settings(max_examples=200)
    @given(st.lists(st.builds(Credit, credit_id=st.sampled_from(["c1", "c2", "c3"]),
                              amount=st.integers(1, 3000)),
                    max_size=3, unique_by=lambda c: c.credit_id).map(tuple),
           lines_st, st.sampled_from([100, 40, 0]))
    def test_credit_never_lost(self, credits: tuple[Credit, ...],
                               lines: tuple[BasketLine, ...], cap: int) -> None:
        """After the commit, what the credits lost is exactly the money they took off the
        sale: a remainder (a small sale, the max_discount cap) stays with the member."""
        p = program(f'[[rule]]\nkind = "credit"\nmax_per_sale = 3\n'
                    f'[stacking]\nmax_discount = {cap}\n')
        m = MemberView("m", credits=credits)
        q = quote(m, Basket(lines), TODAY, p)
        after = apply_sale(m, q, TODAY, p, ref="t").after
        kept = sum(c.amount for c in after.credits)
        assert sum(c.amount for c in credits) - kept == q.discounts
        assert all(c.amount > 0 for c in after.credits if c.credit_id not in q.credits_used)
