"""An owner's report as data (headline figures, tables, charts, notes) and the pure figures
behind it: NPS, the expiry schedule of outstanding points, the program's extra revenue.

Reports are built from central's data by :mod:`pos_loyalty.server.sales.reports` and drawn
as text, CSV (:mod:`pos_loyalty.insight.render`) or HTML with SVG charts (console pages).
Money is integer minor units throughout; :class:`Money` only says how to show it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal


class Money(int):
    """Minor units, shown with two decimals (the chain's currency)."""

    def __str__(self) -> str:
        sign = "-" if self < 0 else ""
        whole, cents = divmod(abs(int(self)), 100)
        return f"{sign}{whole:,}.{cents:02d}"


class Percent(float):
    """A share 0..1 (or a ratio), shown as a percentage with one decimal."""

    def __str__(self) -> str:
        return f"{float(self) * 100:.1f}%"


Cell = str | int | float | None


@dataclass(frozen=True)
class Table:
    title: str
    columns: tuple[str, ...]
    rows: list[tuple[Cell, ...]]
    key: str = ""  # a short name for CSV files and HTML anchors


@dataclass(frozen=True)
class Chart:
    """What to draw, not how: the page draws it as SVG on the server."""

    kind: Literal["line", "bar"]
    title: str
    labels: list[str]
    series: list[tuple[str, list[float | None]]]
    key: str = ""


@dataclass(frozen=True)
class Phrase:
    """Words a page translates whole: an English gettext message with named values
    (``%(name)s``; a literal percent sign is ``%%``), filled in after translation."""

    message: str
    values: Mapping[str, Cell] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message % dict(self.values)


@dataclass(frozen=True)
class Report:
    name: str
    title: str
    period: Phrase
    figures: list[tuple[str, Cell]] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    notes: list[Phrase] = field(default_factory=list)


# -- NPS ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Nps:
    answers: int
    promoters: int   # 9-10
    passives: int    # 7-8
    detractors: int  # 0-6

    @property
    def score(self) -> int | None:
        """% promoters - % detractors, rounded to a whole number; None without answers."""
        if not self.answers:
            return None
        return round(100 * (self.promoters - self.detractors) / self.answers)


def nps_of_counts(answers: int, promoters: int, detractors: int) -> Nps:
    """The NPS of counts an SQL aggregate made (answers, those 9-10, those 0-6); counts
    that cannot come from one set of answers are a ValueError, not a score."""
    if min(answers, promoters, detractors) < 0 or promoters + detractors > answers:
        raise ValueError(f"{promoters} promoters and {detractors} detractors cannot come "
                         f"from {answers} answers")
    return Nps(answers, promoters, answers - promoters - detractors, detractors)


# -- cost against extra revenue -----------------------------------------------------------------


@dataclass(frozen=True)
class Uplift:
    """The program's extra revenue from members over a period (see docs/reports.md)."""

    members: int
    repeat_members: int
    repeat_visits: int        # member visits after each member's first in the period
    member_basket: int        # average paid per member sale (minor units)
    anonymous_basket: int     # average paid per sale without a member
    own_return_rate: float    # share of customers who come back without a program
    basket_uplift: int
    retained: int

    @property
    def extra_revenue(self) -> int:
        return self.basket_uplift + self.retained


def uplift(*, members: int, repeat_members: int, repeat_visits: int, member_revenue: int,
           member_sales: int, anonymous_revenue: int, anonymous_sales: int,
           own_return_rate: float = 0.25) -> Uplift:
    """Extra revenue = basket uplift + retained revenue.

    Basket uplift: members' average sale above the average sale without a member, times
    their sales. Retained revenue: members' repeat visits valued at the average sale without
    a member, times the share of returning members the program accounts for: with a
    repeat-customer rate R among members and ``own_return_rate`` r0 of customers coming back
    on their own, (R - r0) / R of them (none when R <= r0).
    """
    if not 0 <= own_return_rate <= 1:
        raise ValueError("own_return_rate is a share between 0 and 1")
    mb = member_revenue // member_sales if member_sales else 0
    ab = anonymous_revenue // anonymous_sales if anonymous_sales else mb
    basket = max(0, mb - ab) * member_sales
    rate = repeat_members / members if members else 0.0
    share = max(0.0, rate - own_return_rate) / rate if rate else 0.0
    retained = round(repeat_visits * ab * share)
    return Uplift(members, repeat_members, repeat_visits, mb, ab, own_return_rate, basket,
                  retained)


def shares(values: Sequence[int]) -> list[float]:
    total = sum(values)
    return [v / total if total else 0.0 for v in values]
