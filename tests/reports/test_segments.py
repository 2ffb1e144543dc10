"""Journey stages and RFM segments: hand-computed cases and properties."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pos_loyalty.insight.segments import RANK, Stage, StageRules, profile, rfm, segment_of


def stage(visits: list[date], today: date, rules: StageRules | None = None) -> Stage:
    return profile(visits, today, rules or StageRules()).stage


def lapsed_regular(visits: list[date], today: date, after: int) -> bool:
    return profile(visits, today, lapsed_after_days=after).lapsed_regular

D0 = date(2026, 1, 1)


def days(*offsets: int) -> list[date]:
    return [D0 + timedelta(days=n) for n in offsets]


class TestStage:
    def test_hand_computed_journey(self) -> None:
        """One visit is a first visit for 30 days, then one-off; weekly visits make a
        repeat, a regular at the 4th and loyal at the 12th once they span 180 days."""
        assert stage([], D0) == "none"
        one = days(0)
        assert stage(one, D0) == "first_visit"
        assert stage(one, D0 + timedelta(days=30)) == "first_visit"
        assert stage(one, D0 + timedelta(days=31)) == "one_off"
        assert stage(one, D0 + timedelta(days=90)) == "one_off"
        assert stage(one, D0 + timedelta(days=91)) == "lapsed"
        weekly = days(*range(0, 7 * 30, 7))  # 30 weekly visits
        assert stage(weekly, weekly[1]) == "repeat"
        assert stage(weekly, weekly[2]) == "repeat"
        assert stage(weekly, weekly[3]) == "regular"
        assert stage(weekly, weekly[11]) == "regular"  # 12 visits, span 77 days
        assert stage(weekly, weekly[25]) == "regular"  # span 175 days
        assert stage(weekly, weekly[26]) == "loyal"    # span 182 days

    def test_a_lapse_starts_a_new_run(self) -> None:
        """A regular away for more than 90 days is lapsed, and comes back as a repeat
        customer who must become regular again."""
        visits = days(0, 7, 14, 21, 21 + 92)
        assert stage(visits, D0 + timedelta(days=21 + 91)) == "lapsed"
        assert stage(visits, visits[-1]) == "repeat"
        # back after exactly 91 days: never lapsed (lapsed is more than 90 days ago)
        assert stage(days(0, 7, 14, 21, 21 + 91), D0 + timedelta(days=112)) == "regular"

    def test_lapsed_regular_uses_its_own_window(self) -> None:
        """Lapsed regular: regular at the last visit, not seen for more than N days."""
        visits = days(0, 7, 14, 21)
        last = visits[-1]
        assert not lapsed_regular(visits, last + timedelta(days=60), 60)
        assert lapsed_regular(visits, last + timedelta(days=61), 60)
        assert not lapsed_regular(days(0, 7), last + timedelta(days=200), 60)  # a repeat

    def test_rules_are_checked(self) -> None:
        with pytest.raises(ValueError, match="loyal_visits"):
            StageRules(regular_visits=5, loyal_visits=4)

    @settings(max_examples=300, deadline=None)
    @given(gaps=st.lists(st.integers(0, 200), min_size=1, max_size=30),
           lapse=st.integers(1, 120), regular=st.integers(2, 6), extra=st.integers(0, 20))
    def test_stage_never_goes_backwards_without_a_lapse(
            self, gaps: list[int], lapse: int, regular: int, extra: int) -> None:
        """Day by day, a member's stage rank never falls unless they were lapsed between."""
        rules = StageRules(lapse_days=lapse, regular_visits=regular,
                           loyal_visits=regular + extra, loyal_span_days=lapse * 2)
        visits: list[date] = []
        day = D0
        for g in gaps:
            day += timedelta(days=g)
            if not visits or day != visits[-1]:
                visits.append(day)
        last_rank, d = None, visits[0]
        while d <= visits[-1] + timedelta(days=lapse + 2):
            s = stage(visits, d, rules)
            if s == "lapsed":
                last_rank = None
            else:
                assert last_rank is None or RANK[s] >= last_rank, (d, s, last_rank)
                last_rank = RANK[s]
            d += timedelta(days=1)


class TestRfm:
    def test_hand_computed_scores(self) -> None:
        """Recency 10 days (5), 13 visits in the year (4), 600.00 spent (4): champions."""
        today = D0 + timedelta(days=200)
        visits = days(*range(10, 191, 15))  # 13 visits, the last on day 190
        got = rfm(visits, 60_000, today)
        assert got is not None
        assert (got.recency_days, got.frequency, got.monetary) == (10, 13, 60_000)
        assert (got.r, got.f, got.m, got.code, got.segment) == (5, 4, 4, "544", "champions")

    def test_period_bounds_frequency(self) -> None:
        """Only visits in the 365 days ending today count: day 35 is 365 days before day
        400 and falls out, day 36 is in."""
        today = D0 + timedelta(days=400)
        got = rfm(days(0, 35, 36, 399), 0, today)
        assert got is not None and got.frequency == 2 and got.r == 5 and got.m == 1
        assert rfm([], 0, today) is None

    @pytest.mark.parametrize("r, f, m, name", [
        (5, 5, 5, "champions"), (3, 4, 1, "loyal"), (3, 2, 4, "big_spenders"),
        (5, 1, 1, "new"), (3, 2, 2, "promising"), (2, 3, 5, "at_risk"),
        (1, 2, 5, "hibernating"), (3, 3, 3, "needs_attention"),
    ])
    def test_segment_table(self, r: int, f: int, m: int, name: str) -> None:
        assert segment_of(r, f, m) == name

    @given(r=st.integers(1, 5), f=st.integers(1, 5), m=st.integers(1, 5))
    def test_every_score_has_one_segment(self, r: int, f: int, m: int) -> None:
        assert segment_of(r, f, m)


class TestAllMembers:
    def test_member_insight_from_central_sales(self, central_url: str) -> None:
        """Stages and RFM for every member come from pushed sales: visits are days with a
        sale (two sales one day are one visit, refunds are none), spend is net."""
        from pos_loyalty.server.central import CentralStore
        from pos_loyalty.server.sales.insight import member_insight
        from tests.reports.salesdata import record, store_sales

        store = CentralStore(central_url)
        t = datetime(2026, 3, 1, 10)
        recs = [record(f"A{i}", t + timedelta(days=7 * i), "A", [("X", "c", 1, 10_000)])
                for i in range(5)]
        recs.append(record("A4b", t + timedelta(days=28, hours=3), "A", [("Y", "c", 1, 500)]))
        recs.append(record("A4", t + timedelta(days=29), "A", [("X", "c", 1, 10_000)],
                           kind="refund", refund_id="R1"))
        recs.append(record("B0", t, "B", [("X", "c", 1, 2_000)]))
        recs.append(record("N0", t, None, [("X", "c", 1, 2_000)]))
        store_sales(store, "S1", recs)
        today = date(2026, 4, 5)  # 7 days after A's last visit, 35 after B's only one
        got = {m.member_id: m for m in member_insight(store, today=today)}
        assert set(got) == {"A", "B"}
        a, b = got["A"], got["B"]
        assert (a.visits, a.first_visit, a.last_visit) == (5, date(2026, 3, 1),
                                                           date(2026, 3, 29))
        assert (a.stage, a.rfm.recency_days, a.rfm.frequency, a.rfm.monetary) == (
            "regular", 7, 5, 40_500)
        assert (a.rfm.r, a.rfm.f, a.rfm.m) == (5, 2, 3)
        assert (b.stage, b.rfm.code, b.lapsed_regular) == ("one_off", "311", False)
        later = {m.member_id: m for m in member_insight(store, today=date(2026, 7, 1),
                                                        lapsed_after_days=60)}
        assert later["A"].lapsed_regular and later["A"].stage == "lapsed"
        assert later["A"].stage_before == "regular" and not later["B"].lapsed_regular
        store.close()
