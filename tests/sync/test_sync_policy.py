"""The pure offline-redemption policy and clock-offset estimate."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pos_loyalty.errors import ConfigError
from pos_loyalty.sync.policy import (
    OfflinePolicy,
    decide_redeem,
    offset_sample_ms,
    smooth_offset_ms,
)

NOW = datetime(2026, 4, 1, 12)


class TestDecideRedeem:
    @given(points=st.integers(-10, 2000), balance=st.integers(-100, 5000),
           cap=st.integers(0, 1000), budget=st.integers(0, 3000),
           member_pending=st.integers(0, 1000), terminal_pending=st.integers(0, 3000),
           age_s=st.integers(-10**9, 10_000))
    def test_an_allowed_redemption_respects_every_bound(
            self, points: int, balance: int, cap: int, budget: int, member_pending: int,
            terminal_pending: int, age_s: int) -> None:
        """Whatever the inputs, an allowed redemption is within balance, cap, budget and age."""
        policy = OfflinePolicy(member_cap=cap, terminal_budget=budget, max_balance_age_s=3600)
        d = decide_redeem(policy, points=points, balance=balance,
                          synced_at=NOW - timedelta(seconds=age_s), now=NOW,
                          member_pending=member_pending, terminal_pending=terminal_pending)
        if d.allowed:
            assert 0 < points <= balance
            assert member_pending + points <= cap
            assert terminal_pending + points <= budget
            assert -60 <= age_s <= 3600
        else:
            assert d.reason

    def test_reasons_name_the_bound_that_refused(self) -> None:
        """Each refusal says which rule refused it, in words a cashier can read."""
        p = OfflinePolicy(member_cap=100, terminal_budget=150, max_balance_age_s=60)
        fresh = NOW - timedelta(seconds=10)

        def d(**kw: object) -> str:
            args: dict[str, object] = {"points": 50, "balance": 500, "synced_at": fresh,
                                       "now": NOW, "member_pending": 0, "terminal_pending": 0}
            args.update(kw)
            return decide_redeem(p, **args).reason  # type: ignore[arg-type]

        assert d() == "ok"
        assert "below" in d(balance=10)
        assert "not yet confirmed" in d(synced_at=None)
        assert "too old" in d(synced_at=NOW - timedelta(seconds=61))
        assert "clock changed" in d(synced_at=NOW + timedelta(days=365 * 60))
        assert d(synced_at=NOW + timedelta(seconds=30)) == "ok"  # jitter, not a clock set back
        assert "limit" in d(member_pending=60)
        assert "budget" in d(terminal_pending=120)
        assert "nothing" in d(points=0)

    def test_negative_settings_are_refused(self) -> None:
        """A policy with a negative bound is a configuration error naming the key."""
        with pytest.raises(ConfigError, match="member_cap"):
            OfflinePolicy(member_cap=-1)


class TestClockOffset:
    def test_sample_is_server_minus_midpoint(self) -> None:
        """The offset assumes the server answered halfway through the round trip."""
        sent = NOW
        received = NOW + timedelta(milliseconds=200)
        server = NOW + timedelta(hours=1, milliseconds=100)
        assert offset_sample_ms(sent, received, server) == 3_600_000

    def test_smoothing_moves_a_quarter_of_the_way(self) -> None:
        """One outlier moves the estimate only part of the way; the first sample is taken."""
        assert smooth_offset_ms(None, 800) == 800
        assert smooth_offset_ms(1000, 2000) == 1250

    def test_a_stepped_clock_is_taken_at_once(self) -> None:
        """A sample a minute or more away means the clock was set: no averaging with the past."""
        fifty_years = 50 * 365 * 24 * 3600 * 1000
        assert smooth_offset_ms(fifty_years, 120) == 120
        assert smooth_offset_ms(0, -fifty_years) == -fifty_years
        assert smooth_offset_ms(0, 60_000) == 15_000  # at the bound: still a slow round trip
