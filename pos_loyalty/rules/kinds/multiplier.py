"""``kind = "multiplier"``: more points for a while or for some products (birthday x2,
happy hour, beans week)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Self

from pos_loyalty.rules.kinds.base import Rule, Sale
from pos_loyalty.rules.toml import Table


@dataclass(frozen=True, kw_only=True)
class Multiplier(Rule):
    """Every earn rule's points times ``percent`` / 100 (200 = x2), on the rule's lines."""

    KIND: ClassVar[str] = "multiplier"
    KEYS: ClassVar[frozenset[str]] = frozenset({"percent"})

    percent: int = 100

    @classmethod
    def parse(cls, t: Table, **common: Any) -> Self:
        return cls(**common, percent=t.positive("percent", 100))

    def multiplier(self, sale: Sale) -> tuple[int, str] | None:
        return self.percent, self.label
