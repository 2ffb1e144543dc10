"""Stacking, exclusivity, order of application, the discount cap and tax placement."""

from __future__ import annotations

from datetime import date

from rules_helpers import NOON, basket, program

from pos_loyalty.rules import MemberView, quote

TWO = """
    [[rule]]
    id = "member"
    kind = "discount"
    label = "Member 10%"
    percent = 10
    group = "member"
    [[rule]]
    id = "promo"
    kind = "discount"
    label = "Promo 20%"
    percent = 20
    group = "promo"
    [[rule]]
    id = "fiver"
    kind = "discount"
    label = "5.00 off"
    amount = 500
    group = "fixed"
"""


class TestStacking:
    """Which discounts combine, and in which order."""

    def test_compound_in_declared_order(self) -> None:
        """By default each group applies on what the previous ones left: 100 -> 90 -> 72 -> 67."""
        q = quote(MemberView("m"), basket(("a", 1, 10000, "x")), NOON, program(TWO))
        assert [ln.value for ln in q.lines] == [1000, 1800, 500]
        assert q.total_due == 6700

    def test_order_changes_result(self) -> None:
        """Putting the fixed amount first changes what the percentages apply to."""
        p = program(TWO + '[stacking]\norder = ["fixed", "member", "promo"]\n')
        q = quote(MemberView("m"), basket(("a", 1, 10000, "x")), NOON, p)
        assert [ln.value for ln in q.lines] == [500, 950, 1710]

    def test_not_compound(self) -> None:
        """With compound = false every percentage is taken from the full price."""
        p = program(TWO + "[stacking]\ncompound = false\n")
        q = quote(MemberView("m"), basket(("a", 1, 10000, "x")), NOON, p)
        assert [ln.value for ln in q.lines] == [1000, 2000, 500]

    def test_exclusive_set_keeps_the_best_group(self) -> None:
        """Member and promo are exclusive: only the 20% promo survives, the fixed still adds."""
        p = program(TWO + '[stacking]\nexclusive = [["member", "promo"]]\n')
        q = quote(MemberView("m"), basket(("a", 1, 10000, "x")), NOON, p)
        assert [ln.rule for ln in q.lines] == ["promo", "fiver"]

    def test_cap_limits_total_discount(self) -> None:
        """A 25% cap stops the third discount at what is left of the cap."""
        p = program(TWO + "[stacking]\nmax_discount = 25\n")
        q = quote(MemberView("m"), basket(("a", 1, 10000, "x")), NOON, p)
        assert q.discount_total == 2500
        assert [ln.value for ln in q.lines] == [1000, 1500]

    def test_discount_never_exceeds_line(self) -> None:
        """Fixed amounts larger than the basket stop at zero due."""
        p = program('[[rule]]\nkind = "discount"\namount = 99999\n')
        q = quote(MemberView("m"), basket(("a", 1, 300, "x")), NOON, p)
        assert (q.discount_total, q.total_due) == (300, 0)

    def test_rounding_half_up_once_per_rule(self) -> None:
        """15% of 3 x 0.33 is 0.1485, rounded once on the subtotal to 0.15, spread exactly."""
        p = program('[[rule]]\nkind = "discount"\npercent = 15\n')
        q = quote(MemberView("m"), basket(("a", 1, 33, "x"), ("b", 1, 33, "x"),
                                          ("c", 1, 33, "x")), NOON, p)
        assert q.discount_total == 15
        assert sum(e.discount for e in q.effects) == 15


class TestTax:
    """Discounts before or after tax, prices with or without tax, points on net or gross."""

    D = """
        [[rule]]
        id = "base"
        kind = "earn"
        points = 1
        per = 100
        [[rule]]
        id = "fiver"
        kind = "discount"
        label = "5.00 off"
        amount = 500
    """

    def test_tax_included_net_points(self) -> None:
        """120.00 with 20% VAT inside: 5.00 off, 115.00 due, VAT 19.17, points on 95.83."""
        p = program(self.D + "[tax]\nrate = 20\nearn_on = \"net\"\n")
        q = quote(MemberView("m"), basket(("a", 1, 12000, "x")), NOON, p)
        assert (q.total_due, q.tax_total, q.tax_added, q.points_total) == (11500, 1917, 0, 95)

    def test_discount_before_tax_on_net_prices(self) -> None:
        """Net 100.00, 5.00 off before 20% tax: tax on 95.00, due 114.00."""
        p = program(self.D + "[tax]\nrate = 20\nprices_include_tax = false\n"
                             "discounts = \"before_tax\"\n")
        q = quote(MemberView("m"), basket(("a", 1, 10000, "x")), NOON, p)
        assert (q.tax_added, q.total_due, q.points_total) == (1900, 11400, 114)
        assert sum(e.paid for e in q.effects) == q.total_due

    def test_discount_after_tax_on_net_prices(self) -> None:
        """Net 100.00, tax 20.00 first, then 5.00 off: due 115.00."""
        p = program(self.D + "[tax]\nrate = 20\nprices_include_tax = false\n"
                             "discounts = \"after_tax\"\nearn_on = \"net\"\n")
        q = quote(MemberView("m"), basket(("a", 1, 10000, "x")), NOON, p)
        assert (q.tax_added, q.total_due, q.points_total) == (2000, 11500, 95)


class TestMultiplierStacking:
    """Points multipliers in one best_of group do not multiply each other."""

    P = """
        [[rule]]
        id = "base"
        kind = "earn"
        label = "1 pt per 1.00"
        points = 1
        per = 100
        [[rule]]
        id = "tiers"
        kind = "tiers"
        group = "boost"
        [[rule.levels]]
        name = "Gold"
        earn_percent = 200
        [[rule]]
        id = "bday"
        kind = "multiplier"
        label = "Birthday x3"
        percent = 300
        birthday = "month"
        group = "boost"
    """

    def test_best_of_multipliers(self) -> None:
        """With best_of only the larger multiplier applies; with combine both bonuses add."""
        m = MemberView("m", tier="Gold", birthday=date(1990, 3, 1))
        b = basket(("a", 1, 10000, "x"))
        best = quote(m, b, NOON, program(self.P + '[stacking.groups]\nboost = "best_of"\n'))
        assert best.points_total == 300
        assert "Birthday x3: +200 pts" in best.summary and "Gold" not in best.summary
        both = quote(m, b, NOON, program(self.P))
        assert both.points_total == 100 + 100 + 200
