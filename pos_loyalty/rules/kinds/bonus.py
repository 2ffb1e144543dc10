"""``kind = "bonus"``: flat points (a birthday treat, a holiday gift) (mechanic 8)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Self

from pos_loyalty.rules.kinds.base import Rule, Sale
from pos_loyalty.rules.toml import Table


@dataclass(frozen=True, kw_only=True)
class Bonus(Rule):
    """``points`` once per sale that pays something on the rule's lines."""

    KIND: ClassVar[str] = "bonus"
    KEYS: ClassVar[frozenset[str]] = frozenset({"points"})

    points: int = 1

    @classmethod
    def parse(cls, t: Table, **common: Any) -> Self:
        return cls(**common, points=t.positive("points", 1))

    def reward(self, sale: Sale) -> None:
        idx = sale.eligible(self)
        w = sale.paid if idx is sale.every else [sale.paid[i] for i in idx]
        paid_here = sum(w)
        if paid_here > 0 and paid_here >= self.when.min_spend:  # never for a free basket
            sale.add_points(self, self.points, idx, w, "")
            if self.when.limit:
                sale.claims.append(self.id)
