"""Offline redemption policy and clock-offset estimate: pure functions, time is an argument.

Earning never needs central. Redeeming points central has not confirmed is a risk the store
accepts within bounds: per member and per terminal, and only while the terminal's view of
balances is recent. Any overdraft that still happens is recorded at central when the events
arrive and listed by ``pos-loyalty report reconcile``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pos_loyalty.errors import ConfigError


@dataclass(frozen=True)
class OfflinePolicy:
    """Bounds on redemption that central has not yet confirmed (all in points / seconds).

    ``member_cap``: unconfirmed points one member may redeem at this terminal;
    ``terminal_budget``: unconfirmed points all members together may redeem here;
    ``max_balance_age_s``: the cached balances must come from a sync this recent.
    """

    member_cap: int = 500
    terminal_budget: int = 5_000
    max_balance_age_s: float = 24 * 3600.0

    def __post_init__(self) -> None:
        for name in ("member_cap", "terminal_budget", "max_balance_age_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or value < 0:
                raise ConfigError(f"must be a non-negative number, got {value!r}", key=name)


CLOCK_SLACK = timedelta(seconds=60)
"""A sync time up to this far ahead of now is clock jitter, not a clock set back."""


@dataclass(frozen=True)
class RedeemDecision:
    allowed: bool
    reason: str  # cashier-readable


def decide_redeem(
    policy: OfflinePolicy, *, points: int, balance: int, synced_at: datetime | None,
    now: datetime, member_pending: int, terminal_pending: int,
) -> RedeemDecision:
    """May ``points`` be redeemed now? ``*_pending`` are unconfirmed redeemed points."""
    if points <= 0:
        return RedeemDecision(False, "nothing to redeem")
    if points > balance:
        return RedeemDecision(False, f"balance {balance} is below {points} points")
    if synced_at is None:
        return RedeemDecision(False, "balance not yet confirmed by central")
    age = now - synced_at
    if age < -CLOCK_SLACK:  # confirmed "in the future": the clock was set back since
        return RedeemDecision(False, "the terminal's clock changed since balances were "
                                     "confirmed; sync with central first")
    if age > timedelta(seconds=policy.max_balance_age_s):
        return RedeemDecision(False, f"balance last confirmed {int(age.total_seconds())} s ago, "
                                     "too old to redeem offline")
    if member_pending + points > policy.member_cap:
        return RedeemDecision(False, f"offline redemption limit for this member is "
                                     f"{policy.member_cap} points "
                                     f"({member_pending} already pending)")
    if terminal_pending + points > policy.terminal_budget:
        return RedeemDecision(False, "this terminal's offline redemption budget is used up")
    return RedeemDecision(True, "ok")


def offset_sample_ms(sent: datetime, received: datetime, server_time: datetime) -> int:
    """Server clock minus terminal clock, assuming the server answered mid-flight."""
    midpoint = sent + (received - sent) / 2
    return round((server_time - midpoint).total_seconds() * 1000)


CLOCK_STEP_MS = 60_000
"""A sample this far from the estimate means the clock was set, not a slow round trip."""


def smooth_offset_ms(previous: int | None, sample: int, weight: float = 0.25) -> int:
    """Exponentially weighted offset, so one slow round trip does not swing it.

    A sample more than CLOCK_STEP_MS away is taken as it is: the terminal's clock was
    stepped (NTP after a dead RTC battery), and averaging would keep most of the old error
    for many rounds.
    """
    if previous is None or abs(sample - previous) > CLOCK_STEP_MS:
        return sample
    return round(previous + weight * (sample - previous))
