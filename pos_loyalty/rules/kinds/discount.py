"""``kind = "discount"``: a standing member discount, or one by card class (mechanic 2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Self

from pos_loyalty.rules.kinds.base import Applied, Rule, Sale, percent_off, tier_map
from pos_loyalty.rules.toml import Table


@dataclass(frozen=True, kw_only=True)
class Discount(Rule):
    """``percent`` (held as basis points) and/or a fixed ``amount`` off the rule's lines;
    ``by_tier`` gives each tier its own percent instead."""

    KIND: ClassVar[str] = "discount"
    KEYS: ClassVar[frozenset[str]] = frozenset({"percent", "amount", "by_tier"})
    DISCOUNT: ClassVar[bool] = True

    percent_bp: int = 0
    amount: int = 0
    by_tier: tuple[tuple[str, int], ...] = ()

    @classmethod
    def parse(cls, t: Table, **common: Any) -> Self:
        rule = cls(**common, **cls._money_off(t))
        rule.check(t)
        return rule

    @staticmethod
    def _money_off(t: Table) -> dict[str, Any]:
        return {"percent_bp": t.percent_bp("percent"), "amount": t.integer("amount", 0),
                "by_tier": tier_map(t, "by_tier")}

    def check(self, t: Table) -> None:
        t.need(bool(self.percent_bp or self.amount or self.by_tier), "percent",
               "needs percent, amount or by_tier")
        t.need(self.percent_bp <= 10000, "percent", "a discount cannot exceed 100%")

    def tiers_named(self) -> list[tuple[tuple[str, ...], str]]:
        return super().tiers_named() + [(("by_tier", t), t) for t, _ in self.by_tier]

    def bp_for(self, sale: Sale) -> int:
        if self.by_tier:
            return dict(self.by_tier).get(sale.member.tier or "", 0)
        return self.percent_bp

    def discount(self, sale: Sale, amt: list[int], idx: list[int],
                 sub: list[int]) -> Applied | None:
        return percent_off(self, idx, sub, self.bp_for(sale), self.amount, self.label)
