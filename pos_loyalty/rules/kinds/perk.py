"""``kind = "perk"``: a non-monetary reward (VIP service, samples, early access) (mechanic 14)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Self

from pos_loyalty.rules.kinds.base import Rule, Sale
from pos_loyalty.rules.model import Perk
from pos_loyalty.rules.toml import Table


@dataclass(frozen=True, kw_only=True)
class PerkRule(Rule):
    """Tells the till ``text`` when the rule's conditions hold and it has lines to act on."""

    KIND: ClassVar[str] = "perk"
    KEYS: ClassVar[frozenset[str]] = frozenset({"text"})

    text: str = ""

    @classmethod
    def parse(cls, t: Table, **common: Any) -> Self:
        rule = cls(**common, text=t.string("text", ""))
        t.need(bool(rule.text), "text", "a perk needs its text")
        return rule

    def reward(self, sale: Sale) -> None:
        if sale.eligible(self):
            sale.perks.append(Perk(self.program, f"perk:{self.id}", self.text))
            if self.when.limit:
                sale.claims.append(self.id)
