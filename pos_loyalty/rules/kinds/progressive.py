"""``kind = "progressive"``: the discount grows with cumulative spend (mechanic 3)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self

from pos_loyalty.rules.kinds.base import Applied, Rule, Sale, bp_text, percent_off
from pos_loyalty.rules.toml import Table


@dataclass(frozen=True, kw_only=True)
class Progressive(Rule):
    """``scale``: steps of (``from`` spend, percent as basis points), ascending; the step is
    chosen from the spend before this sale (``basis`` lifetime or period)."""

    KIND: ClassVar[str] = "progressive"
    KEYS: ClassVar[frozenset[str]] = frozenset({"scale", "basis"})
    DISCOUNT: ClassVar[bool] = True

    scale: tuple[tuple[int, int], ...] = ()
    basis: Literal["lifetime", "period"] = "lifetime"

    @classmethod
    def parse(cls, t: Table, **common: Any) -> Self:
        scale: list[tuple[int, int]] = []
        for s in t.tables("scale"):
            scale.append((s.integer("from", 0), s.percent_bp("percent")))
            s.done()
        t.need(bool(scale), "scale", "needs at least one step")
        for i, (a, b) in enumerate(itertools.pairwise(scale)):
            if a[0] >= b[0]:
                raise t.ctx.error((*t.path, "scale", i + 1, "from"),
                                  f"steps must be in ascending order of 'from': {b[0]} "
                                  f"follows {a[0]}")
        return cls(**common, scale=tuple(scale),
                   basis=t.choice("basis", "lifetime", ("lifetime", "period")))

    def discount(self, sale: Sale, amt: list[int], idx: list[int],
                 sub: list[int]) -> Applied | None:
        spend = sale.spend_before(self.basis)
        bp = 0
        for start, step_bp in self.scale:
            if spend >= start:
                bp = step_bp
        label = f"{bp_text(bp)} loyalty discount" if self.label == self.id else self.label
        return percent_off(self, idx, sub, bp, 0, label)
