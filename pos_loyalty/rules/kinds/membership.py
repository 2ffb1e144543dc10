"""``kind = "membership"``: a paid plan with standing perks (mechanic 12)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar, Self

from pos_loyalty.rules.amounts import bp_text, pct_text
from pos_loyalty.rules.kinds.base import Applied, Rule, Sale, percent_off
from pos_loyalty.rules.model import Perk
from pos_loyalty.rules.toml import Table


def member_of(plan: str, sale: Sale) -> bool:
    """The member holds ``plan`` today, or is buying its fee in this sale."""
    m = sale.member
    if plan in sale.fee_plans:
        return True
    return (m.membership == plan and m.membership_expires is not None
            and m.membership_expires >= sale.today)


@dataclass(frozen=True, kw_only=True)
class Membership(Rule):
    """Members of ``plan`` get ``percent`` off (basis points), ``earn_percent`` points and
    ``perks``; selling ``fee_sku`` starts or renews the plan for ``valid_days``."""

    KIND: ClassVar[str] = "membership"
    KEYS: ClassVar[frozenset[str]] = frozenset({"plan", "fee_sku", "valid_days", "percent",
                                                "earn_percent", "perks"})
    DISCOUNT: ClassVar[bool] = True

    plan: str = ""
    fee_sku: str = ""
    valid_days: int = 365
    percent_bp: int = 0
    earn_percent: int = 100
    perks: tuple[str, ...] = ()

    @classmethod
    def parse(cls, t: Table, **common: Any) -> Self:
        return cls(**common, plan=t.string("plan", common["id"]),
                   fee_sku=t.string("fee_sku", ""), valid_days=t.positive("valid_days", 365),
                   percent_bp=t.percent_bp("percent"),
                   earn_percent=t.integer("earn_percent", 100, minimum=100),
                   perks=t.strings("perks"))

    def before(self, sale: Sale) -> None:
        if self.fee_sku and self.fee_sku in sale.sku_of:
            sale.fee_plans.add(self.plan)

    def applies(self, sale: Sale) -> bool:
        return member_of(self.plan, sale)

    def lines(self, sale: Sale, idx: list[int]) -> list[int]:
        if not self.fee_sku:
            return idx
        return [i for i in idx if sale.sku_of[i] != self.fee_sku]  # no discount on the fee

    def discount(self, sale: Sale, amt: list[int], idx: list[int],
                 sub: list[int]) -> Applied | None:
        label = self.label
        if label == self.id:
            label = f"{self.plan} {bp_text(self.percent_bp)} member discount"
        return percent_off(self, idx, sub, self.percent_bp, 0, label)

    def multiplier(self, sale: Sale) -> tuple[int, str] | None:
        if self.earn_percent <= 100:
            return None
        return self.earn_percent, f"{self.plan} {pct_text(self.earn_percent)}"

    def reward(self, sale: Sale) -> None:
        m, today = sale.member, sale.today
        if self.plan in sale.fee_plans:
            until = today + timedelta(days=self.valid_days - 1)
            if m.membership == self.plan and m.membership_expires and \
                    m.membership_expires >= today:
                until = m.membership_expires + timedelta(days=self.valid_days)
            sale.perks.append(Perk(self.program, f"membership:{self.plan}",
                                   f"{self.plan} member until {until.isoformat()}", 1, until))
        sale.perks.extend(Perk(self.program, f"perk:{self.id}", f"{self.plan}: {p}")
                          for p in self.perks)
