"""``kind = "instant_win"``: a small game after the sale (mechanic 13)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Self

from pos_loyalty.rules.amounts import half_up
from pos_loyalty.rules.kinds.base import Rule, Sale
from pos_loyalty.rules.model import Perk
from pos_loyalty.rules.toml import Table


@dataclass(frozen=True)
class Prize:
    """One instant-win prize: chance 1 in ``one_in``, at most ``budget`` awarded."""

    name: str
    one_in: int
    value: int = 0
    budget: int = 0  # 0 = unlimited


@dataclass(frozen=True, kw_only=True)
class InstantWin(Rule):
    """Offers a game on a paid sale; ``prizes`` in order, drawn by ``game.draw``. The quote
    counts the expected prize, ``sum(value / one_in)``, in the cost."""

    KIND: ClassVar[str] = "instant_win"
    KEYS: ClassVar[frozenset[str]] = frozenset({"prizes"})

    prizes: tuple[Prize, ...] = ()

    @classmethod
    def parse(cls, t: Table, **common: Any) -> Self:
        prizes = []
        for p in t.tables("prizes"):
            prizes.append(Prize(name=p.string("name", ""), one_in=p.positive("one_in", 1),
                                value=p.integer("value", 0), budget=p.integer("budget", 0)))
            if not prizes[-1].name:
                raise p.error("name", "is required")
            p.done()
        t.need(bool(prizes), "prizes", "needs at least one prize")
        t.need(sum(1_000_000 // p.one_in for p in prizes) <= 1_000_000, "prizes",
               "the odds of all prizes add up to more than 1")
        return cls(**common, prizes=tuple(prizes))

    def reward(self, sale: Sale) -> None:
        q = sale.qualifying
        if q >= self.when.min_spend and q > 0 and sale.eligible(self):
            expected = sum(half_up(p.value, p.one_in) for p in self.prizes)
            sale.perks.append(Perk(self.program, f"game:{self.id}", self.label,
                                   value=expected))
