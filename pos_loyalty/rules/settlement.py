"""Coalition settlement: who owes whom for points earned at one shop and spent at another.

A partner that issues points owes the coalition their liability at the redemption rate
(plus the coalition fee); a partner that accepts points as money is owed their value.
Totals are computed per partner over the whole period, then rounded (half up), so the
rounding of single sales never adds up. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pos_loyalty.errors import RulesError
from pos_loyalty.rules.amounts import half_up
from pos_loyalty.rules.model import Quote
from pos_loyalty.rules.program import Program


@dataclass(frozen=True)
class PartnerActivity:
    """Points issued (earn) or taken as money (redeem) at one partner shop."""

    merchant_id: str
    kind: Literal["earn", "redeem"]
    points: int


@dataclass(frozen=True)
class PartnerTotals:
    """One partner's settlement: positive ``net`` is paid to the partner."""

    merchant_id: str
    name: str
    points_issued: int
    points_redeemed: int
    owes: int
    owed: int
    fee: int
    net: int


def activity_of(sale: Quote) -> tuple[PartnerActivity, ...]:
    """The settlement activity one committed sale contributes."""
    issued = sum(ln.value for ln in sale.lines if ln.kind == "points")
    out = []
    if issued:
        out.append(PartnerActivity(sale.merchant_id, "earn", issued))
    if sale.redeem_points:
        out.append(PartnerActivity(sale.merchant_id, "redeem", sale.redeem_points))
    return tuple(out)


def settle(activity: Iterable[PartnerActivity], program: Program) -> tuple[PartnerTotals, ...]:
    """Totals per partner, in the program's partner order."""
    if program.coalition is None:
        raise RulesError(f"program {program.name!r} has no coalition")
    partners = {p.merchant_id: p for p in program.coalition.partners}
    issued = dict.fromkeys(partners, 0)
    redeemed = dict.fromkeys(partners, 0)
    for a in activity:
        if a.merchant_id not in partners:
            raise RulesError(f"merchant {a.merchant_id!r} is not a partner of "
                             f"{program.coalition.name or program.name!r}")
        if a.points < 0:
            raise RulesError(f"negative points in settlement activity of {a.merchant_id}")
        (issued if a.kind == "earn" else redeemed)[a.merchant_id] += a.points
    rate = program.rate
    out = []
    for mid, partner in partners.items():
        owes = rate.liability(issued[mid])
        owed = rate.value_of(redeemed[mid])
        fee = half_up(owes * program.coalition.fee_bp, 10000)
        out.append(PartnerTotals(mid, partner.name, issued[mid], redeemed[mid], owes, owed,
                                 fee, owed - owes - fee))
    return tuple(out)
