"""The pure rules central applies to terminal events: properties over random batches."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pos_loyalty.server.checks import (
    BatchState,
    EventFacts,
    EventPolicy,
    MemberFacts,
    check_event,
    note_sale,
    sale_ref,
)

KINDS = ("earn", "redeem", "reversal", "adjust", "expire")

events = st.builds(
    EventFacts,
    member_id=st.sampled_from(["A", "B", "GHOST"]),
    kind=st.sampled_from(KINDS),
    points=st.integers(-3000, 3000) | st.sampled_from([10**12, -(10**12), 0]),
    txn_ref=st.sampled_from(["P/1", "P/1/redeem", "P/1/refund/r", "P/2/refund/r", "x"]),
)
policies = st.builds(
    EventPolicy,
    max_event_points=st.integers(0, 2000),
    max_terminal_day_earn=st.integers(0, 5000),
    offline_member_cap=st.integers(0, 800),
    offline_terminal_budget=st.integers(0, 1500),
    debit_other_stores=st.booleans(),
)


class TestRules:
    @settings(max_examples=300, deadline=None)
    @given(policy=policies, batch=st.lists(events, max_size=40),
           start=st.integers(0, 2000), day_earned=st.integers(0, 5000),
           a_stores=st.sets(st.sampled_from(["S1", "S2"])))
    def test_no_batch_breaks_a_limit(self, policy: EventPolicy, batch: list[EventFacts],
                                     start: int, day_earned: int, a_stores: set[str]) -> None:
        """Whatever a terminal sends, applied events keep every cap and sign rule, and each
        balance moves by exactly the applied points."""
        members = {"A": MemberFacts(balance=start, stores=set(a_stores)),
                   "B": MemberFacts(balance=0)}
        state = BatchState(policy, "S1", day_earned, 0, members)
        applied: list[EventFacts] = []
        for ev in batch:
            verdict = check_event(ev, state)
            assert verdict.status in ("applied", "held")
            if verdict.status == "applied":
                note_sale(state, ev)
                applied.append(ev)
            else:
                assert verdict.reason
        earned = sum(e.points for e in applied if e.kind == "earn")
        assert state.day_earned == day_earned + earned
        assert earned == 0 or state.day_earned <= policy.max_terminal_day_earn
        for e in applied:
            assert e.member_id != "GHOST" and e.kind != "adjust"
            assert abs(e.points) <= policy.max_event_points
            assert not (e.kind == "earn" and e.points < 0)
            assert not (e.kind in ("redeem", "expire") and e.points > 0)
            if e.kind == "reversal":
                assert sale_ref(e.txn_ref) is not None
        assert members["A"].balance == start + sum(e.points for e in applied
                                                   if e.member_id == "A")
        assert members["B"].balance == sum(e.points for e in applied if e.member_id == "B")
        for m in members.values():
            assert m.overdraft_here <= policy.offline_member_cap
        assert state.terminal_overdraft <= policy.offline_terminal_budget
        if not policy.debit_other_stores and a_stores and "S1" not in a_stores:
            first_a = next((e for e in applied if e.member_id == "A"), None)
            assert first_a is None or first_a.points >= 0

    def test_policy_refuses_negative_or_boolean_limits(self) -> None:
        """A limit must be a non-negative integer."""
        import pytest

        for bad in (-1, True, 1.5):
            with pytest.raises(ValueError):
                EventPolicy(max_event_points=bad)  # type: ignore[arg-type]
