"""``kind = "credit"``: a next-purchase benefit granted by staff (mechanic 10)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Self

from pos_loyalty.rules.amounts import allocate, half_up
from pos_loyalty.rules.kinds.base import Applied, Rule, Sale
from pos_loyalty.rules.model import Credit
from pos_loyalty.rules.toml import Table


@dataclass(frozen=True, kw_only=True)
class CreditRule(Rule):
    """Uses up to ``max_per_sale`` of the member's unexpired credits (money or percent off);
    a money credit larger than the sale keeps the rest (``Quote.credits_left``)."""

    KIND: ClassVar[str] = "credit"
    KEYS: ClassVar[frozenset[str]] = frozenset({"max_per_sale"})
    DISCOUNT: ClassVar[bool] = True

    max_per_sale: int = 1

    @classmethod
    def parse(cls, t: Table, **common: Any) -> Self:
        return cls(**common, max_per_sale=t.positive("max_per_sale", 1))

    def discount(self, sale: Sale, amt: list[int], idx: list[int],
                 sub: list[int]) -> Applied | None:
        today = sale.today
        credits = [c for c in sale.member.credits if c.expires is None or c.expires >= today]
        credits = credits[: self.max_per_sale]
        if not credits:
            return None
        total = 0
        left = sum(sub)
        gives: list[tuple[Credit, int]] = []
        for c in credits:
            d = min(left, c.amount + half_up(left * c.percent_bp, 10000))
            gives.append((c, d))
            total += d
            left -= d
        if total <= 0:
            return None
        reasons = ", ".join(c.reason for c in credits if c.reason)
        text = f"{self.label} ({reasons})" if reasons else self.label
        return Applied(self, idx, allocate(total, sub), text, credits=tuple(gives))
