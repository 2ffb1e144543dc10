"""``kind = "stamps"``: a punch card, every Nth qualifying purchase free (mechanic 5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self

from pos_loyalty.rules.kinds.base import Applied, Rule, Sale
from pos_loyalty.rules.toml import Table


@dataclass(frozen=True, kw_only=True)
class Stamps(Rule):
    """A stamp per item (or per visit, ``per``) on ``card``; each ``every`` stamps make the
    cheapest (or dearest, ``free``) qualifying unit free. Free (0.00) lines earn no stamps
    unless ``free_items``."""

    KIND: ClassVar[str] = "stamps"
    KEYS: ClassVar[frozenset[str]] = frozenset({"card", "every", "per", "free", "free_items"})
    DISCOUNT: ClassVar[bool] = True

    card: str = ""
    every: int = 10
    per: Literal["item", "visit"] = "item"
    free: Literal["cheapest", "dearest"] = "cheapest"
    free_items: bool = False

    @classmethod
    def parse(cls, t: Table, **common: Any) -> Self:
        return cls(**common, card=t.string("card", common["id"]),
                   every=t.integer("every", 10, minimum=2),
                   per=t.choice("per", "item", ("item", "visit")),
                   free=t.choice("free", "cheapest", ("cheapest", "dearest")),
                   free_items=t.flag("free_items", False))

    def lines(self, sale: Sale, idx: list[int]) -> list[int]:
        lines = sale.lines
        if self.free_items or all(lines[i].unit_price for i in idx):
            return idx
        return [i for i in idx if lines[i].unit_price]

    def prepare(self, sale: Sale) -> None:
        units = [(i, sale.lines[i].qty) for i in sale.eligible(self)]
        if self.per == "visit" and units:
            units = [(units[0][0], 1)]
        sale.stamp_units[self.card] = units
        sale.stamp_every[self.card] = self.every

    def discount(self, sale: Sale, amt: list[int], idx: list[int],
                 sub: list[int]) -> Applied | None:
        lines = sale.lines
        held = sale.member.stamps.get(self.card, 0)
        units = sum(lines[i].qty for i in idx) if self.per == "item" else 1
        free = (held + units) // self.every
        if free <= 0:
            return None
        sign = -1 if self.free == "dearest" else 1
        order = sorted(idx, key=lambda i: (sign * lines[i].unit_price, i))
        free_units: dict[int, int] = {}
        left = free
        for i in order:
            if left <= 0:
                break
            take = min(left, lines[i].qty)
            free_units[i] = take
            left -= take
        chosen = list(free_units)
        parts = [amt[i] * free_units[i] // lines[i].qty for i in chosen]
        return Applied(self, chosen, parts, self.label, free_units=free_units, card=self.card)
