"""Redemption, refunds, expiry, tier review, the instant-win draw and coalition settlement."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from rules_helpers import NOON, basket, program

from pos_loyalty.errors import RulesError
from pos_loyalty.rules import (
    MemberView,
    PartnerActivity,
    PointsLot,
    Program,
    Quote,
    ReturnLine,
    activity_of,
    catalog_offer,
    decide_redemption,
    draw,
    expire_points,
    quote,
    redeem_catalog,
    redemption_offer,
    refund,
    review_tier,
    seed_commitment,
    settle,
    verify_draw,
)

REDEEM = """
    [[rule]]
    id = "base"
    kind = "earn"
    label = "1 pt per 1.00"
    points = 1
    per = 100
    [redemption]
    points = 100
    value = 100
    min_points = 500
    max_points = 5000
    max_percent = 50
    step = 100
    [[redemption.catalog]]
    code = "REPAIR"
    points = 1500
    text = "Free repair"
"""


class TestRedemption:
    """Points to money off within the program's rate, minimum, maximum and steps."""

    def test_offer_bounds(self) -> None:
        """On 40.00 with 3000 pts, at most 50% (2000 pts) may be used, from 500."""
        offer = redemption_offer(MemberView("m", balance=3000), 4000, program(REDEEM))
        assert (offer.allowed, offer.min_points, offer.max_points) == (True, 500, 2000)

    def test_partial_grant_explains(self) -> None:
        """Asking 2550 on 40.00 grants 2000 and says the 50% limit is why."""
        d = decide_redemption(MemberView("m", balance=3000), 4000, 2550, program(REDEEM))
        assert (d.points, d.value) == (2000, 2000)
        assert "50%" in d.reason

    def test_below_minimum_refused(self) -> None:
        """A balance under the minimum cannot redeem, and the reason says so."""
        d = decide_redemption(MemberView("m", balance=300), 4000, 300, program(REDEEM))
        assert d.points == 0 and "minimum" in d.reason

    def test_no_partial(self) -> None:
        """With partial = false a request that cannot be met in full is refused."""
        p = program(REDEEM.replace("step = 100", "step = 100\npartial = false"))
        d = decide_redemption(MemberView("m", balance=3000), 4000, 2500, p)
        assert d.points == 0 and "partial" in d.reason

    def test_quote_with_redemption_earns_on_cash_only(self) -> None:
        """Redeeming 1000 pts on 40.00 takes 10.00 off and earns points on 30.00 only."""
        q = quote(MemberView("m", balance=3000), basket(("a", 1, 4000, "x"), redeem=1000), NOON,
                  program(REDEEM))
        assert (q.redeem_value, q.redeem_points, q.total_due, q.points_total) == (
            1000, 1000, 3000, 30)
        assert q.lines[0].kind == "redeem" and q.lines[0].text == "1000 pts redeemed: -10.00"

    def test_refusal_explained_on_the_till(self) -> None:
        """A refused redemption leaves no redeem line and the summary says why."""
        q = quote(MemberView("m", balance=300), basket(("a", 1, 4000, "x"), redeem=300), NOON,
                  program(REDEEM))
        assert q.redeem_value == 0
        assert q.summary.endswith("redemption: balance 300 pts is below the minimum 500 pts")

    def test_catalog(self) -> None:
        """Non-money rewards are offered once the balance covers them, and redeemed as an entry."""
        assert catalog_offer(MemberView("m", balance=1499), program(REDEEM)) == ()
        assert catalog_offer(MemberView("m", balance=1500), program(REDEEM))[0].code == "REPAIR"
        e = redeem_catalog(MemberView("m", balance=1500), "REPAIR", program(REDEEM))
        assert (e.kind, e.points, e.note) == ("redeem", -1500, "Free repair")
        with pytest.raises(RulesError, match="needs 1500 pts"):
            redeem_catalog(MemberView("m", balance=10), "REPAIR", program(REDEEM))


class TestRefund:
    """A return reverses exactly the points, stamps and redemption of the returned lines."""

    P = REDEEM + """
        [[rule]]
        id = "member"
        kind = "discount"
        label = "10%"
        percent = 10
        [[rule]]
        id = "card"
        kind = "stamps"
        card = "coffee"
        every = 10
        categories = ["coffee"]
    """

    def sale(self, policy: str = "", redeem: int = 500) -> tuple[MemberView, Program, Quote]:
        p = program(self.P + (f'[returns]\nspent_points = "{policy}"\n' if policy else ""))
        m = MemberView("m", balance=1000, stamps={"coffee": 2})
        b = basket(("shirt", 1, 3000, "wear"), ("latte", 3, 300, "coffee"), redeem=redeem)
        return m, p, quote(m, b, NOON, p)

    def test_full_refund_restores_everything(self) -> None:
        """Returning every line takes back all earned points and stamps and gives back the
        redeemed points and the money paid."""
        m, p, q = self.sale()
        after_sale = MemberView("m", balance=m.balance - q.redeem_points + q.points_total)
        r = refund(q, [ReturnLine("shirt", 1), ReturnLine("latte", 3)], after_sale, p)
        assert r.balance_after == m.balance
        assert r.stamps == (("coffee", -3),)
        assert r.money_refund == q.total_due and r.deducted == 0
        assert r.spend_reversed == q.qualifying_spend
        assert sum(e.points for e in r.entries) == m.balance - after_sale.balance

    def test_partial_refunds_add_up_to_the_whole(self) -> None:
        """Three single-latte returns reverse, in total, what the latte line earned."""
        _, p, q = self.sale()
        line = q.effects[1]
        bal, pts, money_back = 5000, 0, 0
        seen: dict[str, int] = {}
        for _ in range(3):
            r = refund(q, [ReturnLine("latte", 1)], MemberView("m", balance=bal), p,
                       already_returned=seen)
            seen = dict(r.returned_after)
            pts += r.points_reversed
            money_back += r.money_refund
            bal = r.balance_after
        assert pts == line.points and money_back == line.paid

    def test_over_return_refused(self) -> None:
        """Returning more than was sold is an error."""
        _, p, q = self.sale()
        with pytest.raises(RulesError, match="2 already returned"):
            refund(q, [ReturnLine("latte", 2)], MemberView("m"), p,
                   already_returned={"latte": 2})

    def test_spent_points_deducted_from_refund(self) -> None:
        """Points already spent elsewhere are bought back from the refund money by default."""
        _, p, q = self.sale(redeem=0)
        r = refund(q, [ReturnLine("shirt", 1)], MemberView("m", balance=0), p)
        owed = r.points_reversed
        assert r.balance_after == 0 and r.deducted == owed  # 1 pt = 0.01
        assert r.money_refund == q.effects[0].paid - owed
        assert [e.kind for e in r.entries] == ["reversal", "reversal"]
        assert r.entries[1].ref == r.entries[0].ref + "/cover"

    def test_negative_balance_policy(self) -> None:
        """With negative_balance the money is refunded in full and the balance goes below 0."""
        _, p, q = self.sale("negative_balance", redeem=0)
        r = refund(q, [ReturnLine("shirt", 1)], MemberView("m", balance=0), p)
        assert r.deducted == 0 and r.balance_after < 0
        assert r.points_owed == -r.balance_after


class TestExpiry:
    """Points expire lot by lot, rolling or on a fixed date, as expire ledger entries."""

    def test_rolling(self) -> None:
        """Points earned 2025-01-10 with a 12-month validity expire after 2026-01-10."""
        p = program('[expiry]\nmode = "rolling"\nmonths = 12\n')
        m = MemberView("m", balance=300, lots=(PointsLot(date(2025, 1, 10), 200),
                                               PointsLot(date(2025, 6, 1), 100)))
        assert expire_points(m, datetime(2026, 1, 10, 23), p) == ()
        (e,) = expire_points(m, datetime(2026, 1, 11), p)
        assert (e.kind, e.points) == ("expire", -200)

    def test_spent_points_are_the_oldest(self) -> None:
        """A balance lower than the lots means the oldest were spent: only what is left expires."""
        p = program('[expiry]\nmode = "rolling"\nmonths = 12\n')
        m = MemberView("m", balance=150, lots=(PointsLot(date(2025, 1, 10), 200),
                                               PointsLot(date(2025, 6, 1), 100)))
        (e,) = expire_points(m, datetime(2026, 2, 1), p)
        assert e.points == -50
        m2 = MemberView("m", balance=100, lots=m.lots)
        assert expire_points(m2, datetime(2026, 2, 1), p) == ()

    def test_fixed_date_and_warning(self) -> None:
        """Fixed on 12-31 at least 12 months after earning; the till is warned 30 days ahead."""
        p = program('[expiry]\nmode = "fixed"\non = "12-31"\nmonths = 12\n')
        m = MemberView("m", balance=80, lots=(PointsLot(date(2025, 3, 1), 80),))
        b = basket(("a", 1, 100, "x"))
        q = quote(m, b, datetime(2026, 12, 5), p)
        assert (q.expiring_points, q.expiring_on) == (80, date(2026, 12, 31))
        assert quote(m, b, datetime(2026, 11, 30), p).expiring_points == 0  # 31 days ahead
        assert expire_points(m, datetime(2026, 12, 31), p) == ()
        assert expire_points(m, datetime(2027, 1, 1), p)[0].points == -80


class TestTierReview:
    """Upgrade as soon as qualified, downgrade only at the end of the period."""

    P = """
        [[rule]]
        kind = "tiers"
        period_months = 12
        downgrade = "one_level"
        [[rule.levels]]
        name = "Red"
        [[rule.levels]]
        name = "Silver"
        min_spend = 50000
        [[rule.levels]]
        name = "Gold"
        min_spend = 150000
    """

    def test_upgrade_within_period(self) -> None:
        """Reaching 1500.00 in the period makes a Red member Gold at once."""
        m = MemberView("m", tier="Red", period_spend=150000, period_start=date(2026, 1, 1))
        r = review_tier(m, NOON, program(self.P))
        assert (r.tier, r.changed, r.new_period) == ("Gold", True, False)

    def test_downgrade_one_level_at_period_end(self) -> None:
        """A Gold member with no spend drops to Silver, not straight to Red, and a period starts."""
        m = MemberView("m", tier="Gold", period_spend=0, period_start=date(2025, 1, 1))
        r = review_tier(m, NOON, program(self.P))
        assert (r.tier, r.new_period, r.period_start) == ("Silver", True, date(2026, 1, 1))

    def test_requalify_and_never(self) -> None:
        """requalify drops to what was earned; never keeps the tier."""
        m = MemberView("m", tier="Gold", period_spend=60000, period_start=date(2025, 1, 1))
        p = self.P.replace("one_level", "requalify")
        assert review_tier(m, NOON, program(p)).tier == "Silver"
        m0 = MemberView("m", tier="Gold", period_spend=0, period_start=date(2025, 1, 1))
        assert review_tier(m0, NOON, program(p)).tier == "Red"
        assert review_tier(m0, NOON, program(self.P.replace("one_level", "never"))).tier == "Gold"


class TestInstantWin:
    """The draw is a pure function of the seed and the sale's identity, within budget."""

    P = """
        [[rule]]
        id = "scratch"
        kind = "instant_win"
        label = "Play"
        [[rule.prizes]]
        name = "Dessert"
        one_in = 4
        budget = 1
    """

    def test_same_inputs_same_draw_and_verifiable(self) -> None:
        """Drawing twice gives the same result, and an auditor with the seed verifies it."""
        p = program(self.P)
        q = quote(MemberView("m"), basket(("a", 1, 500, "x")), NOON, p)
        a = draw(p, "scratch", b"seed", pos_id="P1", txn_id="T1", member_id="m", sale=q)
        assert a == draw(p, "scratch", b"seed", pos_id="P1", txn_id="T1", member_id="m", sale=q)
        assert verify_draw(a, p, b"seed", q)
        assert not verify_draw(a, p, b"other", q)
        assert len(seed_commitment(b"seed")) == 64

    def test_odds_and_budget(self) -> None:
        """About 1 in 4 of 2000 sales win; with the budget used up nobody wins."""
        p = program(self.P)
        q = quote(MemberView("m"), basket(("a", 1, 500, "x")), NOON, p)
        wins = sum(draw(p, "scratch", b"s", pos_id="P", txn_id=str(i), member_id="m",
                        sale=q).prize is not None for i in range(2000))
        assert 400 < wins < 600
        spent = [draw(p, "scratch", b"s", pos_id="P", txn_id=str(i), member_id="m", sale=q,
                      awarded={"Dessert": 1}).prize for i in range(200)]
        assert spent == [None] * 200

    def test_ineligible_sale_refused(self) -> None:
        """A sale the quote did not make eligible cannot be drawn."""
        p = program(self.P)
        q = quote(MemberView("m"), basket(("a", 1, 0, "x")), NOON, p)
        with pytest.raises(RulesError):
            draw(p, "scratch", b"s", pos_id="P", txn_id="T", member_id="m", sale=q)


class TestSettlement:
    """Points earned at one partner and spent at another are settled per partner."""

    P = """
        [[rule]]
        id = "base"
        kind = "earn"
        points = 1
        per = 100
        [redemption]
        points = 100
        value = 100
        [coalition]
        name = "Town"
        fee = 2
        [[coalition.partners]]
        merchant_id = "BAKERY"
        [[coalition.partners]]
        merchant_id = "BOOKS"
    """

    def test_earn_here_spend_there(self) -> None:
        """The bakery issues 5000 pts (owes 50.00 + 1.00 fee); the bookshop takes 3000 (owed
        30.00)."""
        p = program(self.P)
        sale = quote(MemberView("m"), basket(("bread", 1, 500000, "x"), merchant="BAKERY"),
                     NOON, p)
        spend = quote(MemberView("m", balance=5000),
                      basket(("book", 1, 4000, "x"), merchant="BOOKS", redeem=3000), NOON, p)
        acts = [*activity_of(sale), *activity_of(spend)]
        bakery, books = settle(acts, p)
        assert (bakery.points_issued, bakery.owes, bakery.fee, bakery.net) == (5000, 5000, 100,
                                                                               -5100)
        assert (books.points_redeemed, books.owed, books.points_issued) == (3000, 3000, 10)

    def test_unknown_partner_refused(self) -> None:
        """Activity from a shop outside the coalition is an error."""
        with pytest.raises(RulesError, match="not a partner"):
            settle([PartnerActivity("CINEMA", "earn", 1)], program(self.P))


class TestPersistence:
    """A quote survives the round trip through the sale record and feeds the till message."""

    def test_round_trip_and_till_fields(self) -> None:
        """from_dict(to_dict(q)) equals q, and till_fields has the contract's keys."""
        p = program(TestRefund.P)
        q = quote(MemberView("m", balance=1000, stamps={"coffee": 9}),
                  basket(("shirt", 1, 3000, "wear"), ("latte", 3, 300, "coffee"), redeem=500),
                  NOON, p)
        assert Quote.from_dict(q.to_dict()) == q
        fields = q.till_fields()
        assert set(fields) == {"lines", "discount_total", "points_total", "total_due",
                               "summary", "display"}
        assert fields["discount_total"] == q.discounts + q.redeem_value  # redemption included
        assert {ln["kind"] for ln in fields["lines"]} == {"discount", "redeem", "points"}

    def test_malformed_stored_quote(self) -> None:
        """A damaged stored quote is a RulesError, not a KeyError."""
        with pytest.raises(RulesError, match="malformed"):
            Quote.from_dict({"lines": [{"kind": "points"}]})


class TestRefundEdges:
    """Returns of a sku sold on several lines, and of lines earning nothing."""

    def test_same_sku_on_two_lines(self) -> None:
        """Units are taken from the sale's lines in order; all of them reverse everything."""
        p = program(REDEEM)
        q = quote(MemberView("m"), basket(("tee", 1, 1000, "x"), ("tee", 2, 550, "x")), NOON, p)
        first = refund(q, [ReturnLine("tee", 2)], MemberView("m", balance=q.points_total), p)
        assert first.points_reversed == q.effects[0].points + -(-q.effects[1].points // 2)
        rest = refund(q, [ReturnLine("tee", 1)], MemberView("m", balance=first.balance_after), p,
                      already_returned=dict(first.returned_after))
        assert rest.balance_after == 0
        assert first.money_refund + rest.money_refund == q.total_due


class TestLifetimeTiers:
    """Tiers without a period are earned on lifetime spend and never lost."""

    def test_lifetime_upgrade_only(self) -> None:
        """period_months = 0: qualify on lifetime spend; no downgrade however long ago."""
        p = program('[[rule]]\nkind = "tiers"\nperiod_months = 0\n[[rule.levels]]\n'
                    'name = "Red"\n[[rule.levels]]\nname = "Gold"\nmin_spend = 100000\n')
        up = review_tier(MemberView("m", tier="Red", lifetime_spend=100000), NOON, p)
        assert (up.tier, up.changed) == ("Gold", True)
        kept = review_tier(MemberView("m", tier="Gold", lifetime_spend=0,
                                      period_start=date(2000, 1, 1)), NOON, p)
        assert (kept.tier, kept.changed) == ("Gold", False)
