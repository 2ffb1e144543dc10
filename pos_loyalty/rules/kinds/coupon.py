"""``kind = "coupon"``: a personalised offer (mechanic 9)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self

from pos_loyalty.rules.kinds.base import Applied, Sale, percent_off
from pos_loyalty.rules.kinds.discount import Discount
from pos_loyalty.rules.toml import Table


@dataclass(frozen=True, kw_only=True)
class Coupon(Discount):
    """A discount behind a ``code``: held by the member (``bound = "member"``, uses counted
    down), or open to a segment or anyone up to ``uses`` times per member."""

    KIND: ClassVar[str] = "coupon"
    KEYS: ClassVar[frozenset[str]] = Discount.KEYS | {"code", "bound", "uses"}

    code: str = ""
    bound: Literal["member", "segment", "anyone"] = "member"
    uses: int = 1

    @classmethod
    def parse(cls, t: Table, **common: Any) -> Self:
        rule = cls(**common, **cls._money_off(t), code=t.string("code", ""),
                   bound=t.choice("bound", "member", ("member", "segment", "anyone")),
                   uses=t.positive("uses", 1))
        t.need(bool(rule.code), "code", "a coupon needs a code")
        t.need(rule.bound != "segment" or bool(rule.when.segments), "segments",
               "a segment coupon needs segments")
        rule.check(t)
        return rule

    def discount(self, sale: Sale, amt: list[int], idx: list[int],
                 sub: list[int]) -> Applied | None:
        m = sale.member
        if self.bound == "member":
            if m.coupons.get(self.code, 0) <= 0:
                return None
        elif m.coupon_uses.get(self.code, 0) >= self.uses:
            return None
        return percent_off(self, idx, sub, self.bp_for(sale), self.amount, self.label,
                           coupon=self.code)
