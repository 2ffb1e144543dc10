"""``kind = "earn"``: points per amount paid, per item, per visit (mechanic 1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Self

from pos_loyalty.rules.kinds.base import Rule, Sale
from pos_loyalty.rules.toml import Table


@dataclass(frozen=True, kw_only=True)
class Earn(Rule):
    """``points`` per ``per`` minor units paid, ``per_item``, ``per_visit``; category or sku
    ``multipliers`` (percent). Free (0.00) lines earn per item only with ``free_items``."""

    KIND: ClassVar[str] = "earn"
    KEYS: ClassVar[frozenset[str]] = frozenset(
        {"points", "per", "per_item", "per_visit", "multipliers", "free_items"})

    points: int = 0
    per: int = 100
    per_item: int = 0
    per_visit: int = 0
    multipliers: tuple[tuple[str, int], ...] = ()
    free_items: bool = False

    @classmethod
    def parse(cls, t: Table, **common: Any) -> Self:
        rule = cls(**common, points=t.integer("points", 0), per=t.integer("per", 100, minimum=1),
                   per_item=t.integer("per_item", 0), per_visit=t.integer("per_visit", 0),
                   multipliers=t.int_map("multipliers", t.ctx.to_int),
                   free_items=t.flag("free_items", False))
        t.need(bool(rule.points or rule.per_item or rule.per_visit), "points",
               "an earn rule needs points (with per), per_item or per_visit")
        return rule

    def earn(self, sale: Sale) -> None:
        idx = sale.eligible(self)
        base = sale.earn_base
        if not idx or (self.when.min_spend
                       and sum(base[i] for i in idx) < self.when.min_spend):
            return
        mult = dict(self.multipliers)
        if mult and not mult.keys() & set(sale.sku_of):  # only category multipliers apply
            ms = [mult.get(sale.cat_of[i], 100) for i in idx]
        elif mult:
            ms = [mult.get(sale.sku_of[i], mult.get(sale.cat_of[i], 100)) for i in idx]
        else:
            ms = [100] * len(idx)
        note = f"({self.label})"
        if self.points:
            w = [base[i] * m for i, m in zip(idx, ms, strict=True)]
            factor, den = self.points * sale.fnum, self.per * 100 * sale.fden
            sale.add_points(self, sum(w) * factor // den, idx, w, note)
            sale.exact.append((factor, den, idx, w))
        if self.per_item:  # a free line (a bag, a free coffee) earns only if the rule says
            lines = sale.lines
            w = [lines[i].qty * m if lines[i].unit_price > 0 or self.free_items else 0
                 for i, m in zip(idx, ms, strict=True)]
            sale.add_points(self, sum(w) * self.per_item // 100, idx, w, note)
            sale.exact.append((self.per_item, 100, idx, w))
        if self.per_visit and (self.free_items or any(sale.amounts[i] for i in idx)):
            w = sale.paid if idx is sale.every else [sale.paid[i] for i in idx]
            sale.add_points(self, self.per_visit, idx, w, note)
            if self.when.limit:
                sale.claims.append(self.id)
