"""Offer targets are pure predicates: properties over generated members and purchases."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from pos_loyalty.offers.targets import (
    Bought,
    MemberFacts,
    Purchase,
    Target,
    bought,
    matching,
    select,
    within_cap,
)

TODAY = date(2026, 11, 30)
CATS = st.sampled_from(["girls-clothing", "boys-clothing", "shoes", "toys"])
purchases = st.lists(st.builds(
    Purchase, day=st.integers(0, 400).map(lambda d: TODAY - timedelta(days=d)),
    sku=st.sampled_from(["DRESS-G8", "DRESS-G10", "TOP-G10", "JEANS-32"]), category=CATS),
    max_size=12)
members = st.builds(
    MemberFacts, member_id=st.text("MN0123456789", min_size=1, max_size=6),
    birthday=st.none() | st.dates(date(1940, 1, 1), date(2010, 12, 31)),
    stage=st.sampled_from([None, "first_visit", "one_off", "repeat", "regular", "loyal"]),
    segments=st.frozensets(st.sampled_from(["champions", "lapsed_regular", "at_risk"])),
    purchases=purchases.map(tuple))
rules = st.builds(Bought, category=CATS, sku=st.sampled_from(["", "*-G10", "dress-*"]),
                  days=st.integers(1, 365))


class TestBought:
    def test_hand_made(self) -> None:
        """Girls' clothing in size 10 (SKU *-G10) within 90 days: the 89-day-old purchase
        counts, the 90-day-old one is outside, size 8 or another category never counts."""
        rule = Bought("girls-clothing", "*-G10", 90)
        old = Purchase(TODAY - timedelta(days=90), "DRESS-G10", "girls-clothing")
        recent = Purchase(TODAY - timedelta(days=89), "dress-g10", "Girls-Clothing")
        assert not bought([old], rule, TODAY)
        assert bought([old, recent], rule, TODAY)
        assert not bought([Purchase(TODAY, "DRESS-G8", "girls-clothing")], rule, TODAY)
        assert not bought([Purchase(TODAY, "SHOE-G10", "shoes")], rule, TODAY)
        assert not bought([Purchase(TODAY + timedelta(days=1), "DRESS-G10", "girls-clothing")],
                          rule, TODAY)  # not yet happened

    @given(purchases, rules, st.integers(0, 200))
    def test_a_longer_window_never_loses_a_member(self, ps: list[Purchase], rule: Bought,
                                                  more: int) -> None:
        wider = Bought(rule.category, rule.sku, rule.days + more)
        assert not bought(ps, rule, TODAY) or bought(ps, wider, TODAY)

    @given(purchases, purchases, rules)
    def test_more_purchases_never_lose_a_member(self, ps: list[Purchase], extra:
                                                list[Purchase], rule: Bought) -> None:
        assert not bought(ps, rule, TODAY) or bought(ps + extra, rule, TODAY)

    @given(purchases, rules)
    def test_a_sku_pattern_only_narrows(self, ps: list[Purchase], rule: Bought) -> None:
        loose = Bought(rule.category, "", rule.days)
        assert not bought(ps, rule, TODAY) or bought(ps, loose, TODAY)


class TestTarget:
    @given(members)
    def test_an_empty_target_matches_nobody(self, m: MemberFacts) -> None:
        """Leaving the target out can never mean everyone."""
        assert not Target().matches(m, TODAY)

    @given(members, st.sampled_from(["lapsed_regular", "champions"]),
           st.sampled_from(["regular", "loyal"]), rules, st.booleans())
    def test_each_condition_only_narrows(self, m: MemberFacts, seg: str, stage: str,
                                         rule: Bought, bday: bool) -> None:
        """A target with one more condition selects a subset of the one without."""
        base = Target(segments=(seg,))
        for more in (Target(segments=(seg,), stages=(stage,)),
                     Target(segments=(seg,), bought=rule),
                     Target(segments=(seg,), birthday_this_month=bday)):
            assert not more.matches(m, TODAY) or base.matches(m, TODAY)

    def test_birthday_this_month(self) -> None:
        t = Target(birthday_this_month=True)
        assert t.matches(MemberFacts("M", birthday=date(1990, 11, 2)), TODAY)
        assert not t.matches(MemberFacts("M", birthday=date(1990, 12, 2)), TODAY)
        assert not t.matches(MemberFacts("M"), TODAY)

    def test_segment_names_are_case_blind(self) -> None:
        m = MemberFacts("M", segments=frozenset({"lapsed_regular"}), stage="first_visit")
        assert Target(segments=("Lapsed regular",)).matches(m, TODAY)
        assert Target(stages=("first visit",)).matches(m, TODAY)
        assert not Target(stages=("none",)).matches(m, TODAY)
        assert Target(stages=("none",)).matches(MemberFacts("N"), TODAY)


class TestCapAndSelect:
    @given(st.lists(members, max_size=20, unique_by=lambda m: m.member_id),
           st.dictionaries(st.text("MN0123456789", min_size=1, max_size=6),
                           st.integers(0, 3)), st.integers(1, 3))
    def test_select_is_matching_members_under_the_cap(
            self, ms: list[MemberFacts], issued: dict[str, int], times: int) -> None:
        """Exactly the members the target matches and the cap allows, each once, sorted."""
        target = Target(segments=("lapsed_regular",))
        got = select(matching(ms, target, TODAY), issued, times)
        assert got == sorted(got) and len(set(got)) == len(got)
        for m in ms:
            want = target.matches(m, TODAY) and issued.get(m.member_id, 0) < times
            assert (m.member_id in got) == want

    def test_cap(self) -> None:
        assert within_cap(0, 1) and not within_cap(1, 1) and within_cap(1, 2)
