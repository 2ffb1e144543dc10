"""Points expiry, rolling or on fixed dates, as ``expire`` ledger entries. Pure.

A member's balance is attributed to the newest lots first (redemptions spend the oldest
points first), so calling ``expire_points`` again after its entries were written finds
nothing more to expire: it is idempotent given the updated balance.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime

from pos_loyalty.rules.model import LedgerEntry, MemberView
from pos_loyalty.rules.program import Expiry, Program


def add_months(d: date, months: int) -> date:
    """The same day ``months`` later, clamped to the month's last day."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def lot_expires(earned_on: date, rule: Expiry) -> date | None:
    """The last day points earned on ``earned_on`` are valid, or None if they never expire."""
    if rule.mode == "none":
        return None
    earliest = add_months(earned_on, rule.months)
    if rule.mode == "rolling":
        return earliest
    month, day = rule.on
    if month == 2 and day == 29 and not calendar.isleap(earliest.year):
        day = 28
    candidate = date(earliest.year, month, day)
    if candidate < earliest:
        nyear = earliest.year + 1
        if month == 2 and rule.on[1] == 29:
            day = 29 if calendar.isleap(nyear) else 28
        candidate = date(nyear, month, day)
    return candidate


def _live_lots(member: MemberView) -> list[tuple[date, int]]:
    """(earned_on, points still held) per lot, newest lots holding the balance."""
    left = max(0, member.balance)
    out: list[tuple[date, int]] = []
    for lot in sorted(member.lots, key=lambda lot: lot.earned_on, reverse=True):
        take = min(lot.points, left)
        left -= take
        if take > 0:
            out.append((lot.earned_on, take))
    out.reverse()
    return out


def expiry_status(member: MemberView, today: date, program: Program
                  ) -> tuple[int, int, date | None]:
    """(points past their last day, points expiring within ``warn_days``, the first such
    day) on the shop-local day ``today``: what a quote must not spend and should warn of."""
    if program.expiry.mode == "none" or not member.lots:
        return 0, 0, None
    expired = soon = 0
    first: date | None = None
    warn = program.expiry.warn_days
    for earned_on, pts in _live_lots(member):
        until = lot_expires(earned_on, program.expiry)
        if until is None:
            continue
        if today > until:
            expired += pts
        elif (until - today).days <= warn:
            soon += pts
            first = until if first is None else min(first, until)
    return expired, soon, first


def expire_points(member: MemberView, now: datetime, program: Program) -> tuple[LedgerEntry, ...]:
    """The ``expire`` entries due at ``now`` (shop-local day): one per lot whose validity
    has ended."""
    today = program.local(now).date()
    entries = []
    for earned_on, pts in _live_lots(member):
        until = lot_expires(earned_on, program.expiry)
        if until is not None and today > until:
            entries.append(LedgerEntry(
                member.member_id, "expire", -pts,
                f"expire:{member.member_id}:{earned_on.isoformat()}",
                f"{pts} pts earned {earned_on.isoformat()} expired after {until.isoformat()}"))
    return tuple(entries)

