"""Tier review: upgrade as soon as a member qualifies, downgrade at the period's end. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from pos_loyalty.rules.expiry import add_months
from pos_loyalty.rules.model import MemberView
from pos_loyalty.rules.program import Program


@dataclass(frozen=True)
class TierReview:
    """The member's tier after review; ``new_period`` says to reset the period counters."""

    tier: str | None
    changed: bool
    period_start: date | None
    new_period: bool
    reason: str


def review_tier(member: MemberView, now: datetime, program: Program) -> TierReview:
    """Where the member stands: qualified spend/visits in the period against the levels.

    Within a period a member only moves up. When the period is over the program's
    ``downgrade`` policy applies (one level at a time, straight to what was qualified,
    or never) and a new period starts.
    """
    rule = program.tiers()
    today = now.date()
    if rule is None:
        return TierReview(member.tier, False, member.period_start, False, "no tiers")
    names = [lv.name for lv in rule.levels]
    cur = names.index(member.tier) if member.tier in names else -1
    if rule.period_months == 0:  # lifetime tiers: never lost
        got = rule.level_for(member.lifetime_spend, member.visits)
        new = names.index(got) if got is not None else -1
        if new > cur:
            return TierReview(got, True, None, False, f"qualified for {got}")
        return TierReview(member.tier, False, None, False, "unchanged")
    start = member.period_start or today
    end = add_months(start, rule.period_months)
    got = rule.level_for(member.period_spend, member.period_visits)
    qualified = names.index(got) if got is not None else -1
    if today < end:
        if qualified > cur:
            return TierReview(got, True, start, False, f"qualified for {got} in this period")
        return TierReview(member.tier, False, start, False, "unchanged")
    while end <= today:
        start, end = end, add_months(end, rule.period_months)
    if qualified >= cur or rule.downgrade == "requalify":
        new = qualified
    elif rule.downgrade == "never":
        new = cur
    else:
        new = max(qualified, cur - 1)
    tier = names[new] if new >= 0 else None
    if new < cur:
        reason = f"period ended below {member.tier}: now {tier or 'no tier'}"
    elif new > cur:
        reason = f"qualified for {tier}"
    else:
        reason = f"kept {tier}" if tier else "unchanged"
    return TierReview(tier, tier != member.tier, start, True, reason)
