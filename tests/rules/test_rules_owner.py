"""Store owners' cases, written from docs/rules.md: promises kept, no rule silently off."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from rules_helpers import NOON, TIERS, basket, program

from pos_loyalty.errors import ConfigError, RulesError
from pos_loyalty.rules import (
    Credit,
    MemberView,
    PointsLot,
    check_member,
    load_program,
    quote,
)
from pos_loyalty.rules.model import basket_from_dict, member_from_dict
from pos_loyalty.terminal.effects import apply_sale

EXAMPLES = Path(__file__).parents[2] / "examples" / "programs"



def error_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        program(text)
    return info.value


class TestNoSilentNoOp:
    """A mistake that would switch a rule off is refused with its line and a hint."""

    def test_misspelt_tier_in_by_tier(self) -> None:
        """`Gld = 10` under by_tier names its line and suggests Gold."""
        err = error_of(TIERS + """
            [[rule]]
            id = "card"
            kind = "discount"
            [rule.by_tier]
            Silver = 5
            Gld = 10
        """)
        assert err.key == "rule[2].by_tier.Gld" and err.line == 27
        assert "did you mean 'Gold'?" in str(err)

    def test_misspelt_tier_condition(self) -> None:
        """`tiers = ["Platnum"]` is refused; the program's tiers are listed."""
        err = error_of('[program]\ntiers = ["Silver", "Gold", "Platinum"]\n[[rule]]\n'
                       'kind = "discount"\npercent = 5\ntiers = ["Platnum"]\n')
        assert err.line == 6 and "did you mean 'Platinum'?" in str(err)

    def test_tier_named_without_any_tiers(self) -> None:
        """A program that defines no tiers cannot give a tier discount."""
        err = error_of('[[rule]]\nkind = "discount"\npercent = 5\ntiers = ["Gold"]\n')
        assert "defines no tiers" in str(err) and err.line == 4

    def test_threshold_coupon_nobody_redeems(self) -> None:
        """A threshold issuing `FREE-ITM` when the coupon rule's code is `FREE-ITEM`."""
        err = error_of('[[rule]]\nkind = "threshold"\nevery = 5000\ncoupon = "FREE-ITM"\n'
                       '[[rule]]\nkind = "coupon"\ncode = "FREE-ITEM"\namount = 500\n')
        assert err.line == 4 and "did you mean 'FREE-ITEM'?" in str(err)

    def test_membership_condition_names_no_plan(self) -> None:
        """A rule for members of `Plsu` when the paid plan is `Plus`."""
        err = error_of('[[rule]]\nkind = "membership"\nplan = "Plus"\npercent = 5\n'
                       '[[rule]]\nkind = "bonus"\npoints = 10\nmembership = "Plsu"\n')
        assert err.line == 8 and "did you mean 'Plus'?" in str(err)

    def test_member_tier_unknown_to_the_program(self) -> None:
        """A member whose tier the program does not define is refused, with a hint."""
        p = program(TIERS)
        check_member(MemberView("m", tier="Gold"), p)
        with pytest.raises(RulesError, match="did you mean 'Silver'"):
            check_member(MemberView("m", tier="Silvr"), p)

    def test_member_and_basket_shapes(self) -> None:
        """Negative stamps, a line without category and unknown keys are refused."""
        with pytest.raises(RulesError, match="must not be negative"):
            member_from_dict({"member_id": "m", "stamps": {"coffee": -3}})
        with pytest.raises(RulesError, match="'category' is missing"):
            basket_from_dict({"lines": [{"sku": "a", "qty": 1, "unit_price": 100}]})
        with pytest.raises(RulesError, match=r"unknown key.*catgory"):
            basket_from_dict({"lines": [{"sku": "a", "qty": 1, "unit_price": 100,
                                         "category": "", "catgory": "coffee"}]})
        with pytest.raises(RulesError, match=r"unknown key.*redeem"):
            basket_from_dict({"lines": [], "redeem": 500})

    def test_currency_honoured_or_refused(self) -> None:
        """EUR is kept; JPY (no minor unit) and a non-code are refused at their line."""
        assert program('[program]\ncurrency = "EUR"\n').currency == "EUR"
        err = error_of('[program]\nname = "x"\ncurrency = "JPY"\n')
        assert err.line == 3 and "0 minor-unit digits" in str(err)
        assert error_of('[program]\ncurrency = "euro"\n').key == "program.currency"

    def test_unknown_timezone(self) -> None:
        """A misspelt zone is refused with the nearest IANA name."""
        err = error_of('[program]\ntimezone = "Australia/Sidney"\n')
        assert err.line == 2 and "Australia/Sydney" in str(err)


class TestLineNumbers:
    """Every key's error points at the line where it is written."""

    def test_array_of_tables_step(self) -> None:
        """`scale.from` of the third step, written on line 10, is reported on line 10."""
        err = error_of('[[rule]]\nkind = "progressive"\n[[rule.scale]]\nfrom = 0\npercent = 1\n'
                       '[[rule.scale]]\nfrom = 500\npercent = 3\n[[rule.scale]]\nfrom = 100\n'
                       'percent = 5\n')
        assert (err.key, err.line) == ("rule[0].scale[2].from", 10)

    def test_inline_tables_over_several_lines(self) -> None:
        """Steps written as inline tables inside a multi-line array keep their own lines."""
        err = error_of('[[rule]]\nkind = "progressive"\nscale = [\n  { from = 0, percent = 1 },'
                       '\n  { from = 500, percent = 3 },\n  { from = 9, percent = "x" },\n]\n')
        assert (err.key, err.line) == ("rule[0].scale[2].percent", 6)

    @pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.name)
    def test_every_key_of_the_examples(self, path: Path) -> None:
        """For each leaf key of each example, the mapped line is where that key is written."""
        import tomllib

        from pos_loyalty.rules.toml import KeyLines

        text = path.read_text()
        lines = text.splitlines()
        keys = KeyLines(text)

        def walk(value: object, at: tuple[str | int, ...]) -> None:
            if isinstance(value, dict):
                for k, v in value.items():
                    walk(v, (*at, k))
            elif isinstance(value, list) and value and isinstance(value[0], dict):
                for i, v in enumerate(value):
                    walk(v, (*at, i))
            else:
                line = keys.line_of(at)
                assert line is not None, at
                name = str(at[-1])
                assert lines[line - 1].lstrip().startswith(name), (at, line)

        walk(tomllib.loads(text), ())


class TestExpiryAtQuoteTime:
    """An expired point is never spent, whatever the batch schedule; expiry is announced."""

    P = """
        [[rule]]
        kind = "earn"
        points = 1
        per = 100
        [redemption]
        points = 100
        value = 100
        [expiry]
        mode = "rolling"
        months = 12
        warn_days = 30
    """

    def test_expired_lot_not_redeemable(self) -> None:
        """600 pts from 2025-01-10 are past their date on 2026-03-11: only 400 can be used."""
        m = MemberView("m", balance=1000, lots=(PointsLot(date(2025, 1, 10), 600),
                                                PointsLot(date(2026, 1, 5), 400)))
        q = quote(m, basket(("a", 1, 5000, "x"), redeem=1000), NOON, program(self.P))
        assert (q.redeem_points, q.expired_points) == (400, 600)
        assert "balance is 400 pts" in q.redeem_note and "600 pts expired" in q.receipt

    def test_points_about_to_expire_shown(self) -> None:
        """Points ending within warn_days are on the quote, the display and the receipt."""
        m = MemberView("m", balance=300, lots=(PointsLot(date(2025, 3, 20), 300),))
        q = quote(m, basket(("a", 1, 100, "x")), NOON, program(self.P))
        assert (q.expiring_points, q.expiring_on) == (300, date(2026, 3, 20))
        assert q.display[1] == "300 exp 20 Mar"
        assert "300 pts expire on 2026-03-20" in q.receipt
        assert "300 pts expire 2026-03-20" in q.summary


class TestCredits:
    """A service-recovery credit is never lost."""

    P = '[[rule]]\nid = "sorry"\nkind = "credit"\nlabel = "Our apologies"\n'

    def test_remainder_kept_for_next_visit(self) -> None:
        """5.00 on a 3.00 sale: 3.00 off, 2.00 stays with the member after the commit."""
        p = program(self.P)
        m = MemberView("m", credits=(Credit("C1", amount=500, reason="late"),))
        q = quote(m, basket(("a", 1, 300, "x")), NOON, p)
        assert (q.discount_total, q.credits_used, q.credits_left) == (300, (), (("C1", 200),))
        after = apply_sale(m, q, NOON, p, ref="t").after
        assert after.credits == (Credit("C1", amount=200, reason="late"),)
        q2 = quote(after, basket(("b", 1, 1000, "x")), NOON, p)
        assert (q2.discount_total, q2.credits_used) == (200, ("C1",))
        assert apply_sale(after, q2, NOON, p, ref="t2").after.credits == ()


class TestCoalition:
    """Points are earned and spent only at the coalition's partners."""

    def test_non_partner_gets_nothing(self) -> None:
        """A shop not in `partners` neither earns nor redeems; the quote says why."""
        p = load_program(EXAMPLES / "11-coalition.toml")
        m = MemberView("m", balance=5000)
        q = quote(m, basket(("a", 1, 2000, "x"), merchant="GARAGE-9", redeem=500), NOON, p)
        assert (q.points_total, q.redeem_points, q.total_due) == (0, 0, 2000)
        assert "GARAGE-9 is not a partner of Town card" in q.redeem_note
        ok = quote(m, basket(("a", 1, 2000, "x"), merchant="BOOKS-1", redeem=500), NOON, p)
        assert (ok.points_total, ok.redeem_points) == (15, 500)


class TestFreeItems:
    """A free bag or a free coffee earns no per-item points or stamps unless configured."""

    P = """
        [[rule]]
        id = "items"
        kind = "earn"
        per_item = 5
        [[rule]]
        id = "card"
        kind = "stamps"
        every = 10
        {extra}
    """

    def test_free_lines_do_not_earn(self) -> None:
        """2 paid coffees and 3 free bags: 10 pts and 2 stamps, not 25 and 5."""
        q = quote(MemberView("m"), basket(("latte", 2, 350, "c"), ("bag", 3, 0, "c")), NOON,
                  program(self.P.format(extra="")))
        assert (q.points_total, dict(q.stamps_after)) == (10, {"card": 2})

    def test_program_may_count_them(self) -> None:
        """With free_items = true the stamp card counts free lines too."""
        q = quote(MemberView("m"), basket(("latte", 2, 350, "c"), ("bag", 3, 0, "c")), NOON,
                  program(self.P.format(extra="free_items = true")))
        assert (q.points_total, dict(q.stamps_after)) == (10, {"card": 5})


class TestChangesWithinASale:
    """A sale earns at the tier and band held when it starts; changes apply from the next."""

    def test_upgrade_counts_from_the_next_sale(self) -> None:
        """A Red member crossing 500.00 gets the Silver perk now and Silver points next time."""
        p = program(TIERS)
        m = MemberView("m", tier="Red", period_spend=49000)
        q = quote(m, basket(("a", 1, 2000, "x")), NOON, p)
        assert q.points_total == 20 and [k.code for k in q.perks] == ["tier:Silver"]
        after = apply_sale(m, q, NOON, p, ref="t").after
        assert after.tier == "Silver"
        assert quote(after, basket(("a", 1, 2000, "x")), NOON, p).points_total == 30

    def test_progressive_band_from_spend_before_the_sale(self) -> None:
        """The sale that takes lifetime spend past 500.00 still gets the lower band."""
        p = load_program(EXAMPLES / "03-progressive.toml")
        m = MemberView("m", lifetime_spend=49000)
        assert quote(m, basket(("a", 1, 10000, "x")), NOON, p).discount_total == 0
        m2 = MemberView("m", lifetime_spend=59000)
        assert quote(m2, basket(("a", 1, 10000, "x")), NOON, p).discount_total == 300


class TestTotalsAndCost:
    """One meaning for discount_total; the cost counts everything issued."""

    def test_discount_total_includes_redemption(self) -> None:
        """The till and the CLI see discounts plus points paid as money, like the protocol."""
        p = program('[[rule]]\nkind = "discount"\npercent = 10\n[redemption]\npoints = 100\n'
                    'value = 100\n')
        q = quote(MemberView("m", balance=500), basket(("a", 1, 2000, "x"), redeem=500), NOON,
                  p)
        assert (q.discounts, q.redeem_value, q.discount_total) == (200, 500, 700)
        assert q.till_fields()["discount_total"] == 700
        assert q.total_due == 2000 - 700

    def test_threshold_coupon_and_game_in_cost(self) -> None:
        """A 5.00 coupon issued by a threshold and a game's expected prize are costs."""
        p = load_program(EXAMPLES / "04-threshold.toml")
        q = quote(MemberView("m", lifetime_spend=4900), basket(("a", 1, 500, "x")), NOON, p)
        assert q.perks_value == 500 and q.cost == q.points_liability + 500
        cafe = load_program(EXAMPLES / "cafe.toml")
        q = quote(MemberView("m"), basket(("cake", 1, 600, "pastry")),
                  datetime(2026, 3, 14, 12), cafe)  # a Saturday: no pastry discount
        assert [k.value for k in q.perks] == [18]  # 4.50 one time in 25

    def test_capped_discount_says_so(self) -> None:
        """A discount trimmed by max_discount says it was capped."""
        p = program('[[rule]]\nkind = "discount"\nlabel = "Staff 60%"\npercent = 60\n'
                    '[stacking]\nmax_discount = 40\n')
        q = quote(MemberView("m"), basket(("a", 1, 1000, "x")), NOON, p)
        assert q.lines[0].text == "Staff 60% (capped at 40%): -4.00"

    def test_no_other_member_id_on_the_till(self) -> None:
        """The new member's till thanks the referrer without showing the referrer's id."""
        p = load_program(EXAMPLES / "15-referral.toml")
        q = quote(MemberView("new", referred_by="H-OLD"), basket(("a", 1, 3000, "x")), NOON, p)
        assert any(ln.beneficiary == "H-OLD" for ln in q.lines)  # the ledger still knows
        fields = q.till_fields()
        assert "H-OLD" not in str(fields) and "H-OLD" not in " ".join(q.receipt)


class TestShopTime:
    """Days are the shop's days: a Saturday in Sydney starts at 13:00 UTC on Friday."""

    P = """
        [program]
        timezone = "Australia/Sydney"
        [[rule]]
        kind = "discount"
        label = "Saturday 10%"
        percent = 10
        weekdays = ["sat"]
        [[rule]]
        kind = "bonus"
        label = "Easter weekend"
        points = 50
        from = "2026-04-03"
        until = "2026-04-04"
    """

    def test_saturday_morning_in_sydney(self) -> None:
        """09:30 Saturday in Sydney (22:30 UTC Friday) gets the Saturday rule."""
        p = program(self.P)
        at = datetime(2026, 3, 13, 22, 30, tzinfo=UTC)
        assert quote(MemberView("m"), basket(("a", 1, 1000, "x")), at, p).discount_total == 100
        friday = datetime(2026, 3, 13, 12, 30, tzinfo=UTC)  # 23:30 Friday in Sydney
        assert quote(MemberView("m"), basket(("a", 1, 1000, "x")), friday, p).discounts == 0

    def test_cli_and_till_agree(self) -> None:
        """A naive time is shop-local (the CLI's --now); the till's UTC instant matches it."""
        p = program(self.P)
        b = basket(("a", 1, 1000, "x"))
        local = quote(MemberView("m"), b, datetime(2026, 3, 14, 9, 30), p)
        till = quote(MemberView("m"), b, datetime(2026, 3, 13, 22, 30, tzinfo=UTC), p)
        assert local == till

    def test_inclusive_until_across_the_dst_change(self) -> None:
        """`until` is the whole local day, also the night DST ends (5 April 2026, 03:00)."""
        p = program(self.P)
        b = basket(("a", 1, 1000, "x"))
        last = datetime(2026, 4, 4, 12, 59, tzinfo=UTC)  # 23:59 AEDT, 4 April
        after = datetime(2026, 4, 4, 14, 30, tzinfo=UTC)  # 00:30 AEDT, 5 April
        assert quote(MemberView("m"), b, last, p).points_total == 50
        assert quote(MemberView("m"), b, after, p).points_total == 0
        # 02:30 local happens twice on 5 April; both are the 5th, a Sunday
        for hour in (15, 16):
            q = quote(MemberView("m"), b, datetime(2026, 4, 4, hour, 30, tzinfo=UTC), p)
            assert q.points_total == 0 and q.discounts == 0

    def test_birthday_expiry_and_day_limit_use_the_local_day(self) -> None:
        """At 08:00 in Sydney on 14 June (22:00 UTC on the 13th) it is the birthday, a lot
        earned on 14 June 2025 has ended, and a gift claimed yesterday may be claimed again."""
        p = program("""
            [program]
            timezone = "Australia/Sydney"
            [[rule]]
            kind = "bonus"
            id = "bday"
            label = "Happy birthday"
            points = 100
            birthday = "day"
            limit = "day"
            [redemption]
            points = 100
            value = 100
            [expiry]
            mode = "rolling"
            months = 11
        """)
        at = datetime(2026, 6, 13, 22, 0, tzinfo=UTC)
        m = MemberView("m", balance=200, birthday=date(1990, 6, 14),
                       lots=(PointsLot(date(2025, 7, 13), 200),),
                       claims={"bday": date(2026, 6, 13)})
        q = quote(m, basket(("a", 1, 5000, "x"), redeem=200), at, p)
        assert q.points_total == 100 and q.claims == ("bday",)
        assert (q.expired_points, q.redeem_points) == (200, 0)

    def test_europe_spring_forward(self) -> None:
        """In Berlin the night clocks go forward (29 March 2026) days still turn at midnight."""
        p = program('[program]\ntimezone = "Europe/Berlin"\n[[rule]]\nkind = "bonus"\n'
                    'points = 5\nweekdays = ["sun"]\n')
        b = basket(("a", 1, 100, "x"))
        assert quote(MemberView("m"), b, datetime(2026, 3, 28, 22, 59, tzinfo=UTC),
                     p).points_total == 0  # 23:59 Saturday CET
        assert quote(MemberView("m"), b, datetime(2026, 3, 28, 23, 0, tzinfo=UTC),
                     p).points_total == 5  # 00:00 Sunday
        assert quote(MemberView("m"), b, datetime(2026, 3, 29, 21, 59, tzinfo=UTC),
                     p).points_total == 5  # 23:59 Sunday CEST


class TestTillTexts:
    """Every example's quote fits a 2 x 20 display and a 40-column receipt."""

    MEMBER = MemberView(
        "M-1", balance=100_000, tier=None, lifetime_spend=260_000, visits=0,
        birthday=date(1990, 3, 11), stamps={"coffee": 9, "card": 9},
        period_spend=149_000, coupons={"GIRLS-10": 1, "FREE-ITEM": 1, "WELCOME": 1},
        segments=frozenset({"vip", "lapsed", "girls-10"}), referred_by="H-OLD",
        credits=(Credit("C1", 500, reason="late delivery of the sofa you ordered"),),
        lots=(PointsLot(date(2025, 3, 20), 100_000),), membership="Plus",
        membership_expires=date(2027, 1, 1))

    @pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.name)
    def test_fits(self, path: Path) -> None:
        """A busy sale (many effects, a redemption, long labels) still fits both forms."""
        p = load_program(path)
        levels = p.tier_levels()
        m = MemberView(**{**self.MEMBER.__dict__, "tier": levels[-1] if levels else None})
        b = basket(*[(f"sku{i}", 1 + i % 3, 250 + 999 * i, c)
                     for i, c in enumerate(["coffee", "pastry", "beans", "girls-clothing",
                                            "denim", "gift-card", "x", "wear"])],
                   redeem=5000)
        q = quote(m, b, NOON, p)
        first, second = q.display
        assert len(first) <= 20 and len(second) <= 20
        assert first.startswith(f"+{q.points_total} pts")
        assert q.receipt and all(len(line) <= 40 for line in q.receipt)
        assert len(q.receipt) >= len(q.lines)
