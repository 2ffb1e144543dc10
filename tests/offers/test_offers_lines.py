"""The history rules of the cashier's line, on hand-made and generated histories."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from pos_loyalty.offers.file import CashierRules
from pos_loyalty.offers.lines import MAX_LINE, Visit, history_line

TODAY = date(2026, 11, 30)
RULES = CashierRules()
visits = st.lists(st.builds(
    Visit, day=st.integers(0, 500).map(lambda d: TODAY - timedelta(days=d)),
    items=st.lists(st.sampled_from(["oat milk", "croissant", "flat white"]),
                   max_size=3).map(tuple)), max_size=15)


class TestHistoryLine:
    def test_welcome_back(self) -> None:
        """A last visit 60 days ago or more says when; this year without the year."""
        v = [Visit(date(2026, 3, 14), ("oat milk",)), Visit(date(2025, 12, 1))]
        assert history_line(v, TODAY, RULES) == "welcome back: last visit in March"
        assert history_line([Visit(date(2025, 9, 2))], TODAY, RULES) == \
            "welcome back: last visit in September 2025"
        recent = [Visit(TODAY - timedelta(days=59))]
        assert history_line(recent, TODAY, RULES) == ""

    def test_usually_buys(self) -> None:
        """An item on 3 visits is the usual one (twice in one visit counts once)."""
        days = [TODAY - timedelta(days=d) for d in (1, 8, 15)]
        v = [Visit(days[0], ("oat milk", "oat milk")), Visit(days[1], ("oat milk", "scone")),
             Visit(days[2], ("oat milk",))]
        assert history_line(v, TODAY, RULES) == "usually buys oat milk"
        assert history_line(v[:2], TODAY, RULES) == ""  # on 2 visits only

    def test_rules_switch_off(self) -> None:
        v = [Visit(date(2026, 3, 14), ("oat milk",))] * 3
        assert history_line(v, TODAY, replace(RULES, welcome_back=False)) == \
            "usually buys oat milk"
        assert history_line(v, TODAY, replace(RULES, welcome_back=False,
                                              usually_buys=False)) == ""

    @given(visits)
    def test_today_is_not_history_and_lines_are_short(self, vs: list[Visit]) -> None:
        """Today's own sale never changes the line; a line fits the till and never names a
        date more precisely than a month."""
        line = history_line(vs, TODAY, RULES)
        assert line == history_line([*vs, Visit(TODAY, ("flat white",) * 5)], TODAY, RULES)
        assert len(line) <= MAX_LINE
        assert re.fullmatch(r"|welcome back: last visit in [A-Z][a-z]+( \d{4})?|"
                            r"usually buys [a-z ]+", line)
