"""The terminal's offer rows: a use made here survives a pull; malformed rows are refused."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pos_loyalty.errors import StoreError
from pos_loyalty.rules import MemberView
from pos_loyalty.store import LocalStore
from pos_loyalty.store import offers as stored
from pos_loyalty.store.engine_state import settle_offers, with_offers

NOW = datetime(2026, 11, 30, 12, 0)
COLUMNS = ("issue_id", "member_id", "code", "expires_at", "status")


def pull(store: LocalStore, rows: list[list[object]], n: int) -> None:
    store.apply_pull("offers", COLUMNS, rows, f"{n}:x", NOW)


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    s = LocalStore(f"sqlite:///{tmp_path / 't.db'}")
    s.add_member("M-1", "Ann", card_id="C-1")
    return s


class TestRows:
    def test_a_local_use_survives_a_pull_and_is_pushed_once(self, store: LocalStore) -> None:
        """Central still says live (it has not heard of the use): the row stays used, stays
        queued, and is no longer offered; after it is marked pushed nothing is queued."""
        ends = (NOW + timedelta(days=5)).isoformat() + "+00:00"
        pull(store, [["O-1", "M-1", "WB", ends, "live"], ["O-2", "M-1", "WB", ends, "live"]], 1)
        held = stored.live_offers(store.engine, "M-1", NOW)
        assert [o.issue_id for o in held] == ["O-1", "O-2"]
        with store.engine.begin() as conn:
            stored.record_uses(conn, [stored.OfferUse("O-1", "P/T1", 250)], NOW)
        pull(store, [["O-1", "M-1", "WB", ends, "live"]], 2)
        assert [o.issue_id for o in stored.live_offers(store.engine, "M-1", NOW)] == ["O-2"]
        pending = stored.unpushed_uses(store.engine)
        assert [(u.issue_id, u.txn_ref, u.discount) for u in pending] == [("O-1", "P/T1", 250)]
        stored.mark_pushed(store.engine, ["O-1"])
        assert stored.unpushed_uses(store.engine) == []
        pull(store, [["O-2", "M-1", "WB", ends, "used"]], 3)  # used at another till
        assert stored.live_offers(store.engine, "M-1", NOW) == ()

    @pytest.mark.parametrize("row", [
        ["O-1", "M-1", "WB", "not a time", "live"], ["O-1", "M-1", "", "2026-12-01", "live"],
        ["O-1", "M-1", "WB", "2026-12-01", "spent"], ["O-1", "M-1", "WB"]])
    def test_malformed_rows_are_refused(self, store: LocalStore, row: list[object]) -> None:
        with pytest.raises(StoreError):
            pull(store, [row], 1)
        assert stored.live_offers(store.engine, "M-1", NOW - timedelta(days=9999)) == ()


class TestMerge:
    def test_with_and_settle(self) -> None:
        """Two offers and one own coupon of one code: a sale using the code once takes the
        soonest offer; the stored state keeps the own coupon only."""
        a = stored.HeldOffer("O-1", "WB", NOW)
        b = stored.HeldOffer("O-2", "WB", NOW + timedelta(days=1))
        own = MemberView(member_id="M-1", coupons={"WB": 1, "X": 2})
        view = with_offers(own, [a, b])
        assert view.coupons == {"WB": 3, "X": 2}
        after = MemberView(member_id="M-1", coupons={"WB": 2, "X": 2})  # one use taken
        state, used = settle_offers(after, [a, b], ["WB"])
        assert used == (a,) and state.coupons == {"WB": 1, "X": 2}
        state, used = settle_offers(view, [a, b], [])
        assert used == () and state.coupons == own.coupons


codes = st.sampled_from(["WB", "BDAY", "X"])
held = st.lists(st.builds(stored.HeldOffer, issue_id=st.uuids().map(str), code=codes,
                          expires_at=st.just(NOW)), max_size=5)


class TestMergeProperties:
    @given(st.dictionaries(codes, st.integers(1, 3)), held, st.lists(codes, max_size=4))
    def test_settle_undoes_the_merge(self, own: dict[str, int], offers: list[stored.HeldOffer],
                                     used: list[str]) -> None:
        """Whatever a sale used: each used code takes an offer before an own coupon, no
        offer twice; the stored coupons are the own ones less what the sale took from them,
        never an offer's."""
        view = with_offers(MemberView(member_id="M", coupons=own), offers)
        after = dict(view.coupons)
        spent = []
        for c in used:  # a sale uses only what the member holds
            if after.get(c, 0) > 0:
                after[c] -= 1
                spent.append(c)
        state, taken = settle_offers(MemberView(member_id="M", coupons=after), offers, spent)
        assert len({o.issue_id for o in taken}) == len(taken)
        for code in set(own) | {o.code for o in offers}:
            n_offers = sum(1 for o in offers if o.code == code)
            uses = spent.count(code)
            from_offers = sum(1 for o in taken if o.code == code)
            assert from_offers == min(uses, n_offers)
            assert state.coupons.get(code, 0) == own.get(code, 0) - (uses - from_offers)
