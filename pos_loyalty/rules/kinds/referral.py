"""``kind = "referral"``: points for a new member and the friend who brought them
(mechanic 15)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Self

from pos_loyalty.rules.kinds.base import Rule, Sale
from pos_loyalty.rules.model import QuoteLine
from pos_loyalty.rules.toml import Table


@dataclass(frozen=True, kw_only=True)
class Referral(Rule):
    """On a referred member's first paid purchase: ``referee_points`` to them and
    ``referrer_points`` to the referrer (whose id stays off the till)."""

    KIND: ClassVar[str] = "referral"
    KEYS: ClassVar[frozenset[str]] = frozenset({"referee_points", "referrer_points"})

    referee_points: int = 0
    referrer_points: int = 0

    @classmethod
    def parse(cls, t: Table, **common: Any) -> Self:
        rule = cls(**common, referee_points=t.integer("referee_points", 0),
                   referrer_points=t.integer("referrer_points", 0))
        t.need(bool(rule.referee_points or rule.referrer_points), "referee_points",
               "needs referee_points or referrer_points")
        return rule

    def reward(self, sale: Sale) -> None:
        m, q = sale.member, sale.qualifying
        if not (m.referred_by and m.visits == 0 and self.id not in m.claims
                and q > 0 and q >= self.when.min_spend):
            return
        if self.referee_points:
            sale.add_points(self, self.referee_points, sale.every, sale.paid,
                            "(welcome, referred by a friend)")
        if self.referrer_points:  # the till never shows another member's id
            label = f"{self.label} (to your referrer)"
            sale.qlines.append(QuoteLine(self.program, "points", self.referrer_points,
                                         f"{label}: +{self.referrer_points} pts", self.id,
                                         m.referred_by, label=label))
        sale.claims.append(self.id)
