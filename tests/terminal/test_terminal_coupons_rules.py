"""A confirmed product tag coupon in the rules engine: properties over random baskets.

The terminal passes coupons to ``quote`` as data (``Basket.coupons``); the engine takes each
one's percent off one unit of its product (offline: of the dearest unit), at most its cap,
and never more than what is left to pay, and a full return gives back exactly the money
paid and the points earned.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rules_helpers import BASE, program

from pos_loyalty.errors import RulesError
from pos_loyalty.rules import (
    DEFAULT_PROGRAM,
    Basket,
    BasketLine,
    ConfirmedCoupon,
    MemberView,
    ReturnLine,
    quote,
    refund,
)

NOW = datetime(2026, 11, 30, 12, 0)
SKUS = ("A", "B", "C", "D")
TEN_OFF = program(BASE + """\
    [[rule]]
    id = "member10"
    kind = "discount"
    label = "10% member discount"
    percent = 10
""")

lines = st.lists(st.builds(BasketLine, sku=st.sampled_from(SKUS), qty=st.integers(1, 5),
                           unit_price=st.integers(0, 100_000)),
                 min_size=1, max_size=6)
coupons = st.lists(st.builds(
    ConfirmedCoupon, code=st.from_regex(r"[2-9A-Z]{10}", fullmatch=True),
    percent=st.integers(1, 100), sku=st.none() | st.sampled_from(SKUS),
    max_value=st.none() | st.integers(0, 50_000)), max_size=3, unique_by=lambda c: c.code)


class TestCouponInTheEngine:
    @given(lines=lines, coupons=coupons, program=st.sampled_from([DEFAULT_PROGRAM, TEN_OFF]))
    @settings(max_examples=300, deadline=None)
    def test_bounded_and_reversible(self, lines: list[BasketLine],
                                    coupons: list[ConfirmedCoupon], program: object) -> None:
        """Each coupon line is at most its percent of one unit of a line of its product (or
        of any line offline), at most its cap; the total never goes below zero; lines'
        discounts add up to the quote's; returning everything refunds what was paid and
        takes back every point earned."""
        assert program is DEFAULT_PROGRAM or program is TEN_OFF
        member = MemberView(member_id="M-1", balance=0)
        plain = quote(member, Basket(tuple(lines)), NOW, program)
        got = quote(member, Basket(tuple(lines), coupons=tuple(coupons)), NOW, program)
        by_code = {c.code: c for c in coupons}
        for line in got.lines:
            if not line.rule.startswith("coupon:"):
                continue
            c = by_code[line.rule.removeprefix("coupon:")]
            units = [ln.unit_price for ln in lines if c.sku is None or ln.sku == c.sku]
            assert 0 < line.value <= -(-max(units) * c.percent // 100)
            assert c.max_value is None or line.value <= c.max_value
        assert 0 <= got.total_due <= plain.total_due
        assert sum(e.discount for e in got.effects) == got.discounts
        back = refund(got, [ReturnLine(ln.sku, ln.qty) for ln in lines],
                      replace(member, balance=got.points_total), program)
        assert back.money_refund == got.total_due
        assert back.points_reversed == got.points_total

    def test_a_coupon_for_a_product_not_sold_gives_nothing(self) -> None:
        """A coupon whose product is not in the basket adds no line (the terminal asks
        central with the basket's products first, so this only happens if a line is
        removed later)."""
        basket = Basket((BasketLine("A", 1, 1000),),
                        coupons=(ConfirmedCoupon("ABCDEFGHJK", 10, "B"),))
        got = quote(MemberView(member_id="M-1"), basket, NOW, DEFAULT_PROGRAM)
        assert got.discounts == 0 and got.total_due == 1000

    def test_offline_coupon_takes_the_dearest_unit_capped(self) -> None:
        """Offline (no product known): the dearest unit, at most the cap."""
        basket = Basket((BasketLine("A", 3, 1000), BasketLine("B", 1, 4000)),
                        coupons=(ConfirmedCoupon("ABCDEFGHJK", 10, None, 300),))
        got = quote(MemberView(member_id="M-1"), basket, NOW, DEFAULT_PROGRAM)
        assert [(ln.value, ln.text) for ln in got.lines if ln.kind == "discount"] == [
            (300, "coupon ABCDEFGHJK: 10% off one B: -3.00")]

    @pytest.mark.parametrize("percent", [0, 101])
    def test_percent_out_of_range_is_refused(self, percent: int) -> None:
        with pytest.raises(RulesError, match=r"percent must be 1\.\.100"):
            ConfirmedCoupon("ABCDEFGHJK", percent)
