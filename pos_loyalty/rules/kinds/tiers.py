"""``kind = "tiers"``: levels by qualifying spend or visits, faster earning (mechanic 6)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self

from pos_loyalty.rules.amounts import pct_text
from pos_loyalty.rules.kinds.base import Rule, Sale
from pos_loyalty.rules.model import Perk
from pos_loyalty.rules.toml import Table


@dataclass(frozen=True)
class Level:
    """One tier level: what qualifies for it and what it gives."""

    name: str
    min_spend: int = 0
    min_visits: int = 0
    earn_percent: int = 100
    perks: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Tiers(Rule):
    """``levels`` from lowest to highest, qualified in a ``period_months`` period (0: for
    life) and lost at its end by ``downgrade``. A sale earns at the tier the member holds when
    it starts; an upgrade it causes counts from the next sale."""

    KIND: ClassVar[str] = "tiers"
    KEYS: ClassVar[frozenset[str]] = frozenset({"levels", "period_months", "downgrade"})

    levels: tuple[Level, ...] = ()
    period_months: int = 12
    downgrade: Literal["one_level", "requalify", "never"] = "one_level"

    @classmethod
    def parse(cls, t: Table, **common: Any) -> Self:
        levels = []
        for lv in t.tables("levels"):
            levels.append(Level(name=lv.string("name", ""), min_spend=lv.integer("min_spend", 0),
                                min_visits=lv.integer("min_visits", 0),
                                earn_percent=lv.positive("earn_percent", 100),
                                perks=lv.strings("perks")))
            if not levels[-1].name:
                raise lv.error("name", "is required")
            lv.done()
        t.need(bool(levels), "levels", "needs at least one level")
        t.need(all((a.min_spend, a.min_visits) <= (b.min_spend, b.min_visits)
                   for a, b in itertools.pairwise(levels)), "levels",
               "levels must go from lowest to highest")
        return cls(**common, levels=tuple(levels),
                   period_months=t.integer("period_months", 12),
                   downgrade=t.choice("downgrade", "one_level",
                                      ("one_level", "requalify", "never")))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(lv.name for lv in self.levels)

    def level(self, name: str | None) -> Level | None:
        return next((lv for lv in self.levels if lv.name == name), None)

    def level_for(self, spend: int, visits: int) -> str | None:
        """The highest level whose spend and visit marks are both reached."""
        got: str | None = None
        for lv in self.levels:
            if spend >= lv.min_spend and visits >= lv.min_visits:
                got = lv.name
        return got

    def multiplier(self, sale: Sale) -> tuple[int, str] | None:
        lv = self.level(sale.member.tier)
        if lv is None or lv.earn_percent == 100:
            return None
        return lv.earn_percent, f"{lv.name} {pct_text(lv.earn_percent)}"

    def settle(self, sale: Sale) -> None:
        m = sale.member
        if self.period_months:
            new = self.level_for(m.period_spend + sale.qualifying, m.period_visits + 1)
        else:
            new = self.level_for(m.lifetime_spend + sale.qualifying, m.visits + 1)
        names = self.names
        cur = names.index(m.tier) if m.tier in names else -1
        if new is not None and names.index(new) > max(cur, 0):
            sale.perks.append(Perk(sale.program_name, f"tier:{new}", f"Upgraded to {new}"))
