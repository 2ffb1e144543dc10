"""``kind = "threshold"``: a reward each time cumulative spend crosses a mark (mechanic 4)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self

from pos_loyalty.rules.kinds.base import Rule, Sale
from pos_loyalty.rules.kinds.coupon import Coupon
from pos_loyalty.rules.model import Perk
from pos_loyalty.rules.toml import Table, hint


@dataclass(frozen=True, kw_only=True)
class Threshold(Rule):
    """Every ``every`` minor units of spend (``basis`` lifetime or period): ``points``, a
    ``coupon`` issued, or a ``perk``; ``value`` is what one coupon or perk costs the store."""

    KIND: ClassVar[str] = "threshold"
    KEYS: ClassVar[frozenset[str]] = frozenset({"every", "points", "coupon", "perk", "basis",
                                                "value"})

    every: int = 1
    points: int = 0
    coupon: str = ""
    perk: str = ""
    value: int = 0
    basis: Literal["lifetime", "period"] = "lifetime"

    @classmethod
    def parse(cls, t: Table, **common: Any) -> Self:
        rule = cls(**common, every=t.positive("every", 1), points=t.integer("points", 0),
                   coupon=t.string("coupon", ""), perk=t.string("perk", ""),
                   value=t.integer("value", 0),
                   basis=t.choice("basis", "lifetime", ("lifetime", "period")))
        t.need(bool(rule.points or rule.coupon or rule.perk), "coupon",
               "needs a reward: points, coupon or perk")
        return rule

    def refers(self, rules: Sequence[Rule]) -> tuple[tuple[str, ...], str] | None:
        """The coupon it issues must be one a coupon rule redeems."""
        if self.coupon:
            codes = [r.code for r in rules if isinstance(r, Coupon)]
            if self.coupon not in codes:
                return ("coupon",), (f"issues coupon {self.coupon!r} that no coupon rule "
                                     f"redeems{hint(self.coupon, codes)}")
        return super().refers(rules)

    def coupon_value(self, sale: Sale) -> int:
        """What one coupon costs: its coupon rule's fixed amount, else ``value`` (a percent
        coupon's worth depends on the basket it meets)."""
        for r in sale.all_rules:
            if isinstance(r, Coupon) and r.code == self.coupon and r.amount \
                    and not r.percent_bp:
                return r.amount
        return self.value

    def reward(self, sale: Sale) -> None:
        spent = sale.spend_before(self.basis)
        crossed = (spent + sale.qualifying) // self.every - spent // self.every
        if crossed <= 0:
            return
        if self.points:
            sale.add_points(self, self.points * crossed, sale.every, sale.paid, "")
        if self.coupon:
            sale.perks.append(Perk(self.program, f"coupon:{self.coupon}",
                                   f"{self.label} x{crossed}" if crossed > 1 else self.label,
                                   crossed, value=crossed * self.coupon_value(sale)))
        if self.perk:
            sale.perks.append(Perk(self.program, f"perk:{self.id}", self.perk, crossed,
                                   value=0 if self.coupon else crossed * self.value))
