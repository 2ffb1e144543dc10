"""What a committed sale, a refund or an expiry run does to a member. Pure: no I/O, no clock.

The engine says what a sale did (``Quote``) or what a return undoes (``RefundResult``); these
functions turn that into the member's state after it and the ledger entries to write, so the
store only has to write both in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime

from pos_loyalty.rules import (
    LedgerEntry,
    MemberView,
    PointsLot,
    Program,
    Quote,
    RefundResult,
    review_tier,
)


@dataclass(frozen=True)
class MemberChange:
    """A member's state after an event and the ledger entries that record it.

    ``entries`` may name other members (a referrer's bonus); ``points`` is the signed
    change of this member's balance.
    """

    after: MemberView
    entries: tuple[LedgerEntry, ...]
    points: int


def live_lots(lots: Iterable[PointsLot], balance: int) -> tuple[PointsLot, ...]:
    """The lots that still hold ``balance``, newest first taken, merged per day, oldest first.

    Redemptions spend the oldest points first (as the engine's expiry assumes), so lots past
    what the balance covers are spent and dropped: the list stays as short as the number of
    days with live points.
    """
    per_day: dict[date, int] = {}
    for lot in lots:
        if lot.points > 0:
            per_day[lot.earned_on] = per_day.get(lot.earned_on, 0) + lot.points
    left = max(0, balance)
    kept: list[PointsLot] = []
    for day in sorted(per_day, reverse=True):
        if left <= 0:
            break
        take = min(per_day[day], left)
        kept.append(PointsLot(day, take))
        left -= take
    kept.reverse()
    return tuple(kept)


def _bump(counts: Mapping[str, int], key: str, by: int) -> dict[str, int]:
    out = dict(counts)
    out[key] = out.get(key, 0) + by
    if out[key] == 0:
        del out[key]
    return out


def apply_sale(member: MemberView, sale: Quote, now: datetime, program: Program, *,
               ref: str) -> MemberChange:
    """The member after ``sale`` and its ledger entries (earn, redeem, referrer's earn).

    Follows docs/rules.md "What the daemon fills in and persists": balance moves by
    ``points_total - redeem_points``; stamps are ``stamps_after``; coupons, credits and
    claims used are taken; perks issue coupons, start memberships and upgrade tiers; the
    tier period's counters are reset when the period is over, then the sale is counted.
    """
    today = now.date()
    tier, period_start = member.tier, member.period_start
    period_spend, period_visits = member.period_spend, member.period_visits
    tiers = program.tiers()
    if tiers is not None and tiers.period_months:
        review = review_tier(member, now, program)
        if review.new_period:
            tier, period_spend, period_visits = review.tier, 0, 0
        period_start = review.period_start
    period_spend += sale.qualifying_spend
    period_visits += 1

    coupons, coupon_uses = dict(member.coupons), dict(member.coupon_uses)
    personal = program.personal_coupons()
    for code in sale.coupons_used:
        if code in personal:
            coupons = _bump(coupons, code, -1)
        else:
            coupon_uses = _bump(coupon_uses, code, 1)
    membership, expires = member.membership, member.membership_expires
    for perk in sale.perks:
        kind, _, arg = perk.code.partition(":")
        if kind == "coupon":
            coupons = _bump(coupons, arg, perk.count)
        elif kind == "membership":
            membership, expires = arg, perk.until
        elif kind == "tier":
            tier = arg
    stamps = dict(member.stamps)
    stamps.update(sale.stamps_after)
    used = set(sale.credits_used)
    left = dict(sale.credits_left)  # a credit used in part keeps the rest
    claims = dict(member.claims)
    claims.update((rule_id, today) for rule_id in sale.claims)

    earned, redeemed = sale.points_total, sale.redeem_points
    points = earned - redeemed
    balance = member.balance + points
    lots = member.lots + ((PointsLot(today, earned),) if earned > 0 else ())
    entries: list[LedgerEntry] = []
    if earned:
        entries.append(LedgerEntry(member.member_id, "earn", earned, ref, "points earned"))
    if redeemed:
        entries.append(LedgerEntry(member.member_id, "redeem", -redeemed, f"{ref}/redeem",
                                   f"{redeemed} pts redeemed"))
    for line in sale.lines:
        if line.kind == "points" and line.beneficiary and line.value:
            entries.append(LedgerEntry(line.beneficiary, "earn", line.value,
                                       f"{ref}/referral", line.text))
    after = replace(
        member, balance=balance, tier=tier,
        lifetime_spend=member.lifetime_spend + sale.qualifying_spend, visits=member.visits + 1,
        stamps={k: v for k, v in stamps.items() if v}, period_spend=period_spend,
        period_visits=period_visits, period_start=period_start, membership=membership,
        membership_expires=expires, coupons=coupons, coupon_uses=coupon_uses,
        credits=tuple(replace(c, amount=left.get(c.credit_id, c.amount),
                              percent_bp=0 if c.credit_id in left else c.percent_bp)
                      for c in member.credits if c.credit_id not in used),
        lots=live_lots(lots, balance), claims=claims,
    )
    return MemberChange(after, tuple(entries), points)


def apply_refund(member: MemberView, result: RefundResult) -> MemberChange:
    """The member after a return: its ledger entries, stamps taken back, spend taken off."""
    points = sum(e.points for e in result.entries)
    balance = member.balance + points
    stamps = dict(member.stamps)
    for card, change in result.stamps:
        stamps[card] = stamps.get(card, 0) + change
    after = replace(
        member, balance=balance, stamps={k: v for k, v in stamps.items() if v},
        lifetime_spend=max(0, member.lifetime_spend - result.spend_reversed),
        period_spend=max(0, member.period_spend - result.spend_reversed),
        lots=live_lots(member.lots, balance),
    )
    return MemberChange(after, result.entries, points)


def apply_entries(member: MemberView, entries: Iterable[LedgerEntry]) -> MemberChange:
    """The member after plain ledger entries of their own (points expiry)."""
    mine = tuple(e for e in entries if e.member_id == member.member_id)
    points = sum(e.points for e in mine)
    balance = member.balance + points
    after = replace(member, balance=balance, lots=live_lots(member.lots, balance))
    return MemberChange(after, mine, points)
