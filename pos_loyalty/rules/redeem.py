"""Redemption: what the till may take in points for a sale, and why. Pure.

The till asks (``redeem.request`` with a number of points); the engine answers with the
points it grants, their money value and a one-line reason whenever it grants less than
asked. Money is computed with floor (a point is never worth more than the rate says).
"""

from __future__ import annotations

from dataclasses import dataclass

from pos_loyalty.errors import RulesError
from pos_loyalty.rules.model import LedgerEntry, MemberView
from pos_loyalty.rules.program import CatalogItem, Program


@dataclass(frozen=True)
class RedemptionOffer:
    """What the member could redeem on this sale: bounds, step and the rate."""

    allowed: bool
    min_points: int
    max_points: int
    step: int
    points_per_unit: int  # this many points ...
    value_per_unit: int   # ... are worth this many minor units
    reason: str


@dataclass(frozen=True)
class RedemptionDecision:
    """The answer to a redemption request: points granted (0 = refused) and why."""

    requested: int
    points: int
    value: int
    reason: str


def redemption_offer(member: MemberView, payable: int, program: Program) -> RedemptionOffer:
    """The most and least this member may redeem against ``payable`` minor units."""
    r = program.redemption
    if r is None:
        return RedemptionOffer(False, 0, 0, 1, 100, 100, "this program has no redemption")
    caps = [member.balance, payable * r.max_percent // 100 * r.points // r.value]
    if r.max_points:
        caps.append(r.max_points)
    most = max(0, min(caps))
    most -= most % r.step
    # never more points than needed to cover the money cap exactly
    while most > 0 and r.value_of(most) > payable * r.max_percent // 100:
        most -= r.step
    if most < max(r.min_points, 1):
        if member.balance < r.min_points:
            why = f"balance {member.balance} pts is below the minimum {r.min_points} pts"
        elif member.balance <= 0:
            why = f"balance is {member.balance} pts"
        elif payable <= 0:
            why = "nothing left to pay"
        else:
            why = f"sale too small: at most {most} pts may be used, minimum is {r.min_points}"
        return RedemptionOffer(False, r.min_points, 0, r.step, r.points, r.value, why)
    return RedemptionOffer(True, max(r.min_points, r.step), most, r.step, r.points, r.value,
                           f"up to {most} pts ({r.points} pts = {r.value / 100:.2f})")


def decide_redemption(member: MemberView, payable: int, requested: int,
                      program: Program) -> RedemptionDecision:
    """Grant what the program allows of ``requested`` points; the reason says why if less."""
    offer = redemption_offer(member, payable, program)
    r = program.rate
    if requested <= 0:
        return RedemptionDecision(requested, 0, 0, "no points requested")
    if not offer.allowed:
        return RedemptionDecision(requested, 0, 0, offer.reason)
    if requested < offer.min_points:
        return RedemptionDecision(requested, 0, 0,
                                  f"minimum redemption is {offer.min_points} pts")
    granted = min(requested, offer.max_points)
    granted -= granted % offer.step
    reason = "granted"
    if granted < requested:
        if program.redemption is not None and not program.redemption.partial:
            return RedemptionDecision(requested, 0, 0,
                                      f"partial redemption not allowed; at most "
                                      f"{offer.max_points} pts on this sale")
        limits = []
        if requested > member.balance:
            limits.append(f"balance is {member.balance} pts")
        if program.redemption is not None and program.redemption.max_points and \
                requested > program.redemption.max_points:
            limits.append(f"maximum {program.redemption.max_points} pts per sale")
        if requested > payable * r.max_percent // 100 * r.points // r.value:
            limits.append(f"at most {r.max_percent}% of the sale may be paid in points")
        if requested % offer.step:
            limits.append(f"points are redeemed in steps of {offer.step}")
        reason = f"partially granted: {'; '.join(limits)}"
    if granted < offer.min_points:
        return RedemptionDecision(requested, 0, 0,
                                  f"minimum redemption is {offer.min_points} pts")
    return RedemptionDecision(requested, granted, r.value_of(granted), reason)


def catalog_offer(member: MemberView, program: Program) -> tuple[CatalogItem, ...]:
    """Non-money rewards (a product, a service, an experience) the balance can buy now."""
    r = program.redemption
    if r is None:
        return ()
    return tuple(item for item in r.catalog if item.points <= member.balance)


def redeem_catalog(member: MemberView, code: str, program: Program, *,
                   ref: str = "") -> LedgerEntry:
    """The ``redeem`` ledger entry for exchanging points for a catalogue reward."""
    r = program.redemption
    item = next((i for i in (r.catalog if r else ()) if i.code == code), None)
    if item is None:
        raise RulesError(f"no catalogue reward {code!r} in program {program.name!r}")
    if member.balance < item.points:
        raise RulesError(f"{item.text} needs {item.points} pts; balance is {member.balance}")
    return LedgerEntry(member.member_id, "redeem", -item.points, ref or f"catalog:{code}",
                       item.text)
