"""Journey stage and RFM segment of a member, from their visit days and spend. Pure.

The rules (also in docs/reports.md, which owners read):

*A visit* is a day with at least one sale (refunds and voids are not visits). A member's
visits fall into *runs*: a visit on a day the member was lapsed (see below) starts a new run.
Within a run the stage only moves forward; only a lapse starts over.

*Journey stage*, as of a day, from the visits up to that day:

- ``none``: no visit yet;
- ``lapsed``: the last visit is more than ``lapse_days`` ago;
- ``first_visit``: one visit ever, at most ``one_off_days`` ago;
- ``one_off``: one visit ever, longer ago (but not lapsed);
- ``repeat``: more than one visit ever, fewer than ``regular_visits`` in the current run;
- ``regular``: at least ``regular_visits`` visits in the current run;
- ``loyal``: at least ``loyal_visits`` visits in the current run, spanning at least
  ``loyal_span_days`` from its first visit to its last.

*Lapsed regular*: lapsed for more than a chosen number of days (``lapsed_after_days``), and
regular or loyal at their last visit.

*RFM*: recency (days since the last visit), frequency (visits in the ``period_days`` up to
the day) and monetary value (net spend in that period, minor units), each scored 1 to 5 by
fixed cut points (:data:`RFM_CUTS`), then named by the first matching row of
:data:`SEGMENTS`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from typing import Literal

Stage = Literal["none", "lapsed", "first_visit", "one_off", "repeat", "regular", "loyal"]

STAGES: tuple[Stage, ...] = ("none", "first_visit", "one_off", "repeat", "regular", "loyal",
                             "lapsed")
"""In the order a member moves through them (``lapsed`` last: it can follow any)."""
RANK: dict[Stage, int] = {"none": 0, "first_visit": 1, "one_off": 2, "repeat": 3,
                          "regular": 4, "loyal": 5, "lapsed": -1}


@dataclass(frozen=True)
class StageRules:
    """The numbers behind the stages (the defaults suit a weekly-shop retailer)."""

    one_off_days: int = 30
    regular_visits: int = 4
    loyal_visits: int = 12
    loyal_span_days: int = 180
    lapse_days: int = 90

    def __post_init__(self) -> None:
        if min(self.one_off_days, self.regular_visits, self.loyal_visits,
               self.lapse_days) < 1 or self.loyal_span_days < 0:
            raise ValueError("stage rules: every number must be positive")
        if self.loyal_visits < self.regular_visits:
            raise ValueError("stage rules: loyal_visits must be at least regular_visits")


DEFAULT_RULES = StageRules()


def current_run(visits: Sequence[date], lapse_days: int) -> Sequence[date]:
    """The visits since the member last came back from a lapse (``visits`` sorted): a visit
    starts a new run when the member was lapsed the day before it, i.e. more than
    ``lapse_days + 1`` days after the visit before it."""
    start = 0
    for i in range(1, len(visits)):
        if (visits[i] - visits[i - 1]).days > lapse_days + 1:
            start = i
    return visits[start:]


def _run_stage(run: Sequence[date], total: int, rules: StageRules) -> Stage:
    if total == 1:
        return "first_visit"
    if len(run) >= rules.loyal_visits and (run[-1] - run[0]).days >= rules.loyal_span_days:
        return "loyal"
    if len(run) >= rules.regular_visits:
        return "regular"
    return "repeat"


@dataclass(frozen=True)
class Profile:
    """A member on a day: stage, the stage their last visit left them in, lapsed regular."""

    stage: Stage
    stage_before: Stage
    lapsed_regular: bool
    days_since: int | None


def profile(visits: Sequence[date], today: date, rules: StageRules = DEFAULT_RULES, *,
            lapsed_after_days: int | None = None) -> Profile:
    """The member's stage on ``today`` from their visit days (sorted, distinct; visits after
    ``today`` are ignored), what it was at their last visit, and whether they are a lapsed
    regular: regular or loyal at their last visit and not seen for more than
    ``lapsed_after_days`` (default: the rules' ``lapse_days``)."""
    if visits and visits[-1] > today:
        visits = [v for v in visits if v <= today]
    if not visits:
        return Profile("none", "none", False, None)
    before = _run_stage(current_run(visits, rules.lapse_days), len(visits), rules)
    since = (today - visits[-1]).days
    now: Stage = before
    if since > rules.lapse_days:
        now = "lapsed"
    elif before == "first_visit" and since > rules.one_off_days:
        now = "one_off"
    after = rules.lapse_days if lapsed_after_days is None else lapsed_after_days
    return Profile(now, before, since > after and before in ("regular", "loyal"), since)


# -- RFM --------------------------------------------------------------------------------

RFM_CUTS: dict[str, tuple[int, int, int, int]] = {
    # score 5, 4, 3, 2 thresholds; anything beyond the last is 1
    "recency_days": (14, 30, 60, 120),        # at most this many days since the last visit
    "frequency": (24, 12, 6, 2),              # at least this many visits in the period
    "monetary": (100_000, 50_000, 20_000, 5_000),  # at least this net spend (minor units)
}

SEGMENTS: tuple[tuple[str, str], ...] = (
    ("champions", "R>=4 F>=4 M>=4"),
    ("loyal", "R>=3 F>=4"),
    ("big_spenders", "R>=3 M>=4"),
    ("new", "R>=4 F<=1"),
    ("promising", "R>=3 F<=2"),
    ("at_risk", "R<=2 F>=3"),
    ("hibernating", "R<=2"),
    ("needs_attention", ""),
)
"""Segment names by the first condition met (an empty condition always matches)."""


@dataclass(frozen=True)
class Rfm:
    recency_days: int
    frequency: int
    monetary: int
    r: int
    f: int
    m: int
    segment: str

    @property
    def code(self) -> str:
        return f"{self.r}{self.f}{self.m}"


def score_recency(days: int) -> int:
    for score, cut in zip((5, 4, 3, 2), RFM_CUTS["recency_days"], strict=True):
        if days <= cut:
            return score
    return 1


def _score_at_least(value: int, cuts: tuple[int, int, int, int]) -> int:
    for score, cut in zip((5, 4, 3, 2), cuts, strict=True):
        if value >= cut:
            return score
    return 1


def score_frequency(visits: int) -> int:
    return _score_at_least(visits, RFM_CUTS["frequency"])


def score_monetary(spend: int) -> int:
    return _score_at_least(spend, RFM_CUTS["monetary"])


def _meets(cond: str, scores: dict[str, int]) -> bool:
    for part in cond.split():
        letter, op, number = part[0], part[1:3], int(part[3:])
        value = scores[letter]
        if (op == ">=" and value < number) or (op == "<=" and value > number):
            return False
    return True


@cache
def segment_of(r: int, f: int, m: int) -> str:
    scores = {"R": r, "F": f, "M": m}
    return next(name for name, cond in SEGMENTS if _meets(cond, scores))


def rfm(visits: Sequence[date], spend: int, today: date, period_days: int = 365) -> Rfm | None:
    """RFM of a member on ``today``: ``visits`` sorted days, ``spend`` their net spend in the
    ``period_days`` up to ``today``; None for a member with no visit."""
    seen = visits if not visits or visits[-1] <= today else [v for v in visits if v <= today]
    if not seen:
        return None
    recency = (today - seen[-1]).days
    frequency = len(seen) - bisect_left(seen, today - timedelta(days=period_days - 1))
    r, f, m = score_recency(recency), score_frequency(frequency), score_monetary(spend)
    return Rfm(recency, frequency, spend, r, f, m, segment_of(r, f, m))
