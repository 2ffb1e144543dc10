"""Every mechanic of loyalty-concepts.md, each from a store owner's example."""

from __future__ import annotations

from datetime import date, datetime

from rules_helpers import NOON, TIERS, basket, program

from pos_loyalty.rules import DEFAULT_PROGRAM, Credit, MemberView, quote

COFFEE = ("latte", 1, 350, "coffee")


class TestPoints:
    """Mechanic 1: points per amount, per item, per visit, with multipliers."""

    def test_default_program_one_point_per_unit(self) -> None:
        """DEFAULT_PROGRAM gives 1 point per full 1.00, rounding down."""
        q = quote(MemberView("m"), basket(("a", 3, 333, "x")), NOON, DEFAULT_PROGRAM)
        assert q.points_total == 9
        assert q.summary == "+9 pts (1 per 1.00)"

    def test_category_multiplier_doubles_beans(self) -> None:
        """A 200% multiplier on a category earns double on those lines only."""
        p = program("""
            [[rule]]
            id = "base"
            kind = "earn"
            points = 1
            per = 100
            [rule.multipliers]
            beans = 200
        """)
        q = quote(MemberView("m"), basket(("b", 1, 1000, "beans"), ("c", 1, 1000, "cup")),
                  NOON, p)
        assert q.points_total == 30
        assert [e.points for e in q.effects] == [20, 10]

    def test_per_item_and_per_visit(self) -> None:
        """Per-item points count units; a per-visit bonus is paid once per day."""
        p = program("""
            [[rule]]
            id = "items"
            kind = "earn"
            per_item = 2
            [[rule]]
            id = "visit"
            kind = "earn"
            per_visit = 5
            limit = "day"
        """)
        b = basket(("a", 3, 100, "x"), ("b", 2, 100, "x"))
        q = quote(MemberView("m"), b, NOON, p)
        assert q.points_total == 15
        assert q.claims == ("visit",)
        again = quote(MemberView("m", claims={"visit": NOON.date()}), b, NOON, p)
        assert again.points_total == 10


class TestMemberDiscount:
    """Mechanic 2: a standing 10% member discount and a fixed discount by card class."""

    P = """
        [program]
        tiers = ["Silver", "Gold"]
        [[rule]]
        id = "member"
        kind = "discount"
        label = "10% member discount"
        percent = 10
        exclude_categories = ["tobacco"]
        group = "m"
        [[rule]]
        id = "class"
        kind = "discount"
        label = "Card class"
        group = "m"
        [rule.by_tier]
        Silver = 5
        Gold = 15
        [stacking.groups]
        m = "best_of"
    """

    def test_ten_percent_off_except_excluded(self) -> None:
        """10% comes off the eligible lines only, and the text explains it."""
        q = quote(MemberView("m"), basket(("shirt", 1, 2000, "wear"),
                                          ("cig", 1, 900, "tobacco")), NOON, program(self.P))
        assert q.discount_total == 200
        assert q.total_due == 2700
        assert q.lines[0].text == "10% member discount: -2.00"
        assert [e.discount for e in q.effects] == [200, 0]

    def test_best_of_card_class(self) -> None:
        """A Gold card gets its 15%, not 15% plus 10%; a Silver card keeps the 10%."""
        b = basket(("shirt", 1, 2000, "wear"))
        assert quote(MemberView("m", tier="Gold"), b, NOON, program(self.P)).discount_total == 300
        assert quote(MemberView("m", tier="Silver"), b, NOON,
                     program(self.P)).discount_total == 200


class TestProgressive:
    """Mechanic 3: the discount percentage grows with cumulative spend."""

    P = """
        [[rule]]
        id = "scale"
        kind = "progressive"
        [[rule.scale]]
        from = 0
        percent = 0
        [[rule.scale]]
        from = 50000
        percent = 3
        [[rule.scale]]
        from = 100000
        percent = 5
    """

    def test_steps_follow_lifetime_spend(self) -> None:
        """0% below 500.00, 3% from 500.00, 5% from 1000.00 of lifetime spend."""
        b = basket(("a", 1, 10000, "x"))
        got = [quote(MemberView("m", lifetime_spend=s), b, NOON, program(self.P)).discount_total
               for s in (49999, 50000, 100000)]
        assert got == [0, 300, 500]


class TestThreshold:
    """Mechanic 4: one free item for every 50.00 spent."""

    P = """
        [[rule]]
        id = "fifty"
        kind = "threshold"
        label = "Free item earned"
        every = 5000
        coupon = "FREE-ITEM"
        [[rule]]
        id = "free-item"
        kind = "coupon"
        code = "FREE-ITEM"
        amount = 500
    """

    def test_crossing_issues_coupons(self) -> None:
        """Crossing 50.00 once issues one coupon; crossing twice in one sale issues two."""
        p = program(self.P)
        q = quote(MemberView("m", lifetime_spend=4500), basket(("a", 1, 1000, "x")), NOON, p)
        assert [(k.code, k.count) for k in q.perks] == [("coupon:FREE-ITEM", 1)]
        q = quote(MemberView("m", lifetime_spend=4500), basket(("a", 1, 10000, "x")), NOON, p)
        assert q.perks[0].count == 2

    def test_no_crossing_no_reward(self) -> None:
        """Spend that stays under the next mark gives nothing yet."""
        q = quote(MemberView("m", lifetime_spend=100), basket(("a", 1, 1000, "x")), NOON,
                  program(self.P))
        assert q.perks == ()


class TestStamps:
    """Mechanic 5: every 10th coffee is free."""

    P = """
        [[rule]]
        id = "card"
        kind = "stamps"
        label = "10th coffee free"
        card = "coffee"
        every = 10
        categories = ["coffee"]
    """

    def test_tenth_coffee_free(self) -> None:
        """With 9 stamps the next coffee is free and the card starts again at 0."""
        q = quote(MemberView("m", stamps={"coffee": 9}), basket(COFFEE, ("cake", 1, 400, "food")),
                  NOON, program(self.P))
        assert q.discount_total == 350
        assert q.lines[0].text == "10th coffee free: -3.50"
        assert q.stamps_after == (("coffee", 0),)

    def test_stamps_accumulate_without_reward(self) -> None:
        """With 3 stamps, two coffees make 5 and nothing is free."""
        q = quote(MemberView("m", stamps={"coffee": 3}), basket(("latte", 2, 350, "coffee")),
                  NOON, program(self.P))
        assert q.discount_total == 0
        assert q.stamps_after == (("coffee", 5),)

    def test_cheapest_coffee_is_the_free_one(self) -> None:
        """When the 10th falls in a mixed basket, the cheapest qualifying unit is free."""
        q = quote(MemberView("m", stamps={"coffee": 8}),
                  basket(("flat", 1, 420, "coffee"), ("espresso", 2, 250, "coffee")),
                  NOON, program(self.P))
        assert q.discount_total == 250
        assert q.stamps_after == (("coffee", 1),)


class TestStampVariants:
    """Stamp cards counted per visit, and giving the dearest item."""

    def test_per_visit_card(self) -> None:
        """Per visit: three coffees are one stamp; the 5th visit frees one coffee."""
        p = program('[[rule]]\nkind = "stamps"\ncard = "v"\nevery = 5\nper = "visit"\n'
                    'categories = ["coffee"]\n')
        b = basket(("latte", 3, 350, "coffee"))
        q = quote(MemberView("m", stamps={"v": 2}), b, NOON, p)
        assert (q.discount_total, q.stamps_after) == (0, (("v", 3),))
        q = quote(MemberView("m", stamps={"v": 4}), b, NOON, p)
        assert (q.discount_total, q.stamps_after) == (350, (("v", 0),))

    def test_dearest_free(self) -> None:
        """free = 'dearest' gives the most expensive qualifying unit."""
        p = program('[[rule]]\nkind = "stamps"\ncard = "c"\nevery = 3\nfree = "dearest"\n'
                    'categories = ["coffee"]\n')
        q = quote(MemberView("m", stamps={"c": 2}),
                  basket(("esp", 1, 250, "coffee"), ("flat", 1, 420, "coffee")), NOON, p)
        assert q.discount_total == 420


class TestFreeBaskets:
    """A basket worth nothing earns no flat bonus, referral or game."""

    def test_zero_value_basket(self) -> None:
        """A free sample alone does not trigger a birthday gift or a referral bonus."""
        p = program('[[rule]]\nid = "g"\nkind = "bonus"\npoints = 100\n'
                    '[[rule]]\nid = "r"\nkind = "referral"\nreferee_points = 50\n')
        q = quote(MemberView("m", referred_by="x"), basket(("sample", 1, 0, "x")), NOON, p)
        assert q.lines == () and q.points_total == 0


class TestTiers:
    """Mechanic 6: Silver +50% points, Gold x2, upgrade when qualifying spend is reached."""

    P = TIERS

    def test_gold_doubles(self) -> None:
        """Gold x2 on 120.00: 120 base points plus a 'Gold x2: +120 pts' line."""
        q = quote(MemberView("m", tier="Gold", period_spend=200000),
                  basket(("a", 1, 12000, "x")), NOON, program(self.P))
        assert q.points_total == 240
        assert "Gold x2: +120 pts" in q.summary

    def test_silver_fifty_percent_more(self) -> None:
        """Silver +50% on 99.00 earns 99 + 49 (bonus rounded down)."""
        q = quote(MemberView("m", tier="Silver", period_spend=60000),
                  basket(("a", 1, 9900, "x")), NOON, program(self.P))
        assert q.points_total == 148
        assert "Silver +50%: +49 pts" in q.summary

    def test_upgrade_announced_when_sale_qualifies(self) -> None:
        """A Red member whose sale takes period spend past 500.00 is told of Silver."""
        q = quote(MemberView("m", tier="Red", period_spend=49000), basket(("a", 1, 2000, "x")),
                  NOON, program(self.P))
        assert [k.code for k in q.perks] == ["tier:Silver"]


class TestBirthdayAndWindows:
    """Mechanic 8: a birthday gift once a year, double points in a holiday window."""

    P = """
        [[rule]]
        id = "base"
        kind = "earn"
        label = "1 pt per 1.00"
        points = 1
        per = 100
        [[rule]]
        id = "bday"
        kind = "bonus"
        label = "Happy birthday"
        points = 200
        birthday = "day"
        limit = "year"
        [[rule]]
        id = "xmas"
        kind = "multiplier"
        label = "Holiday double points"
        percent = 200
        from = 2026-12-20
        until = 2026-12-24
    """

    def test_birthday_gift_once_a_year(self) -> None:
        """On the birthday the gift is added and claimed; claimed this year, no second gift."""
        m = MemberView("m", birthday=date(1990, 3, 11))
        q = quote(m, basket(("a", 1, 1000, "x")), NOON, program(self.P))
        assert q.points_total == 210 and q.claims == ("bday",)
        claimed = MemberView("m", birthday=date(1990, 3, 11), claims={"bday": NOON.date()})
        assert quote(claimed, basket(("a", 1, 1000, "x")), NOON,
                     program(self.P)).points_total == 10

    def test_holiday_window_bounds(self) -> None:
        """Double points apply from the first to the last day of the window, not after."""
        b = basket(("a", 1, 1000, "x"))
        inside = quote(MemberView("m"), b, datetime(2026, 12, 24, 18), program(self.P))
        after = quote(MemberView("m"), b, datetime(2026, 12, 25, 9), program(self.P))
        assert (inside.points_total, after.points_total) == (20, 10)


class TestCoupons:
    """Mechanic 9: a coupon bound to a member (girls' size 10) or to a segment."""

    P = """
        [[rule]]
        id = "girls"
        kind = "coupon"
        label = "Girls' wear -20%"
        code = "GIRLS-10"
        percent = 20
        categories = ["girls"]
        [[rule]]
        id = "lapsed"
        kind = "coupon"
        label = "We missed you"
        code = "BACK"
        bound = "segment"
        segments = ["lapsed"]
        amount = 500
        min_spend = 2000
    """

    def test_member_coupon_only_for_its_holder(self) -> None:
        """Only a member holding GIRLS-10 gets 20% on girls' wear, and it is reported used."""
        b = basket(("dress", 1, 3000, "girls"), ("sock", 1, 500, "men"))
        q = quote(MemberView("m", coupons={"GIRLS-10": 1}), b, NOON, program(self.P))
        assert q.discount_total == 600 and q.coupons_used == ("GIRLS-10",)
        assert quote(MemberView("x"), b, NOON, program(self.P)).discount_total == 0

    def test_segment_coupon_single_use_and_min_spend(self) -> None:
        """A lapsed member gets 5.00 off 20.00 or more, once."""
        b = basket(("dress", 1, 2500, "women"))
        lapsed = MemberView("m", segments=frozenset({"lapsed"}))
        assert quote(lapsed, b, NOON, program(self.P)).discount_total == 500
        used = MemberView("m", segments=frozenset({"lapsed"}), coupon_uses={"BACK": 1})
        assert quote(used, b, NOON, program(self.P)).discount_total == 0
        small = basket(("sock", 1, 1500, "women"))
        assert quote(lapsed, small, NOON, program(self.P)).discount_total == 0


class TestServiceRecovery:
    """Mechanic 10: a staff-granted credit for a delayed delivery, used on the next sale."""

    P = """
        [[rule]]
        id = "sorry"
        kind = "credit"
        label = "Our apologies"
    """

    def test_credit_applied_and_reported(self) -> None:
        """A 5.00 credit comes off with its reason and is reported as used."""
        m = MemberView("m", credits=(Credit("C1", amount=500, reason="late delivery"),))
        q = quote(m, basket(("a", 1, 1200, "x")), NOON, program(self.P))
        assert q.lines[0].text == "Our apologies (late delivery): -5.00"
        assert q.credits_used == ("C1",)

    def test_expired_credit_ignored_and_capped_by_basket(self) -> None:
        """An expired credit is not used; a credit larger than the basket stops at zero due."""
        old = MemberView("m", credits=(Credit("C1", 500, expires=date(2026, 1, 1)),))
        assert quote(old, basket(("a", 1, 1200, "x")), NOON, program(self.P)).discount_total == 0
        big = MemberView("m", credits=(Credit("C2", 5000),))
        assert quote(big, basket(("a", 1, 1200, "x")), NOON, program(self.P)).total_due == 0


class TestPaidMembership:
    """Mechanic 12: an annual fee buys 5% off, +50% points and free express delivery."""

    P = """
        [[rule]]
        id = "base"
        kind = "earn"
        label = "1 pt per 1.00"
        points = 1
        per = 100
        [[rule]]
        id = "plus"
        kind = "membership"
        plan = "Plus"
        fee_sku = "PLUS-FEE"
        valid_days = 365
        percent = 5
        earn_percent = 150
        perks = ["free express delivery"]
    """

    def test_active_member_gets_perks(self) -> None:
        """A valid Plus member gets 5% off, +50% points and the delivery perk."""
        m = MemberView("m", membership="Plus", membership_expires=date(2026, 12, 31))
        q = quote(m, basket(("a", 1, 10000, "x")), NOON, program(self.P))
        assert q.discount_total == 500
        assert q.points_total == 95 + 47
        assert "Plus: free express delivery" in q.summary

    def test_expired_membership_gives_nothing(self) -> None:
        """After the last valid day, no discount and no bonus."""
        m = MemberView("m", membership="Plus", membership_expires=date(2026, 3, 10))
        q = quote(m, basket(("a", 1, 10000, "x")), NOON, program(self.P))
        assert (q.discount_total, q.points_total) == (0, 100)

    def test_buying_the_fee_starts_membership(self) -> None:
        """Selling the fee sku reports the membership's end date; the fee is not discounted."""
        q = quote(MemberView("m"), basket(("PLUS-FEE", 1, 4900, "fee"), ("a", 1, 1000, "x")),
                  NOON, program(self.P))
        start = [k for k in q.perks if k.code == "membership:Plus"]
        assert start and start[0].until == date(2027, 3, 10)
        assert q.discount_total == 50


class TestReferral:
    """Mechanic 15: a referred member's first purchase rewards them and their friend."""

    P = """
        [[rule]]
        id = "refer"
        kind = "referral"
        label = "Thanks for the referral"
        referee_points = 200
        referrer_points = 500
        min_spend = 1000
    """

    def test_first_purchase_rewards_both(self) -> None:
        """The referee's points count in points_total; the referrer's go to them."""
        m = MemberView("new", referred_by="old")
        q = quote(m, basket(("a", 1, 1500, "x")), NOON, program(self.P))
        assert q.points_total == 200
        assert [(ln.beneficiary, ln.value) for ln in q.lines if ln.beneficiary] == [("old", 500)]
        assert q.claims == ("refer",)

    def test_not_on_later_purchases(self) -> None:
        """A member with earlier visits earns no referral bonus."""
        m = MemberView("new", referred_by="old", visits=1)
        assert quote(m, basket(("a", 1, 1500, "x")), NOON, program(self.P)).lines == ()


class TestNonMonetaryAndGame:
    """Mechanics 13 and 14: VIP early access and an instant-win game offered after a sale."""

    P = """
        [[rule]]
        id = "early"
        kind = "perk"
        text = "Early access to the new collection"
        segments = ["vip"]
        [[rule]]
        id = "scratch"
        kind = "instant_win"
        label = "Play to win a dessert"
        min_spend = 500
        [[rule.prizes]]
        name = "Dessert"
        one_in = 20
    """

    def test_vip_perk_and_game_offer(self) -> None:
        """A VIP is told of early access; a sale of 5.00 or more offers the game."""
        q = quote(MemberView("m", segments=frozenset({"vip"})), basket(("a", 1, 600, "x")),
                  NOON, program(self.P))
        assert [k.code for k in q.perks] == ["perk:early", "game:scratch"]
        q = quote(MemberView("m"), basket(("a", 1, 400, "x")), NOON, program(self.P))
        assert q.perks == ()


class TestProductPromotion:
    """A dated promotion doubling points on some products only."""

    P = """
        [[rule]]
        id = "base"
        kind = "earn"
        label = "1 pt per 1.00"
        points = 1
        per = 100
        [[rule]]
        id = "beans-week"
        kind = "multiplier"
        label = "Beans week x2"
        percent = 200
        categories = ["beans"]
        from = 2026-03-09
        until = 2026-03-15
    """

    def test_multiplier_limited_to_its_products(self) -> None:
        """Only the beans line earns double; the cup earns the base rate."""
        q = quote(MemberView("m"), basket(("b", 1, 1000, "beans"), ("c", 1, 1000, "cup")),
                  NOON, program(self.P))
        assert q.points_total == 30
        assert "Beans week x2: +10 pts" in q.summary
        assert [e.points for e in q.effects] == [20, 10]


class TestBirthdayModes:
    """Birthday windows: the day, three days either side, the month; 29 February."""

    def test_week_and_leap_day(self) -> None:
        """'week' covers three days either side; a 29 February birthday is kept on 28 February."""
        p = program('[[rule]]\nid = "g"\nkind = "bonus"\npoints = 10\nbirthday = "week"\n')
        b = basket(("a", 1, 100, "x"))
        near = MemberView("m", birthday=date(1990, 3, 14))
        far = MemberView("m", birthday=date(1990, 3, 15))
        assert quote(near, b, NOON, p).points_total == 10
        assert quote(far, b, NOON, p).points_total == 0
        leap = program('[[rule]]\nid = "g"\nkind = "bonus"\npoints = 10\nbirthday = "day"\n')
        m = MemberView("m", birthday=date(2000, 2, 29))
        assert quote(m, b, datetime(2026, 2, 28, 9), leap).points_total == 10
