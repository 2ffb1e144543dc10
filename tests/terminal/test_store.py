"""The local store: lookups, and the sale + ledger written as one idempotent transaction."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from pos_loyalty.errors import LoyaltyError, StoreError
from pos_loyalty.migrations import upgrade_terminal
from pos_loyalty.rules import (
    Basket,
    BasketLine,
    LedgerEntry,
    MemberView,
    PointsLot,
    Quote,
    quote,
)
from pos_loyalty.rules.program import DEFAULT_PROGRAM
from pos_loyalty.store import LocalStore
from pos_loyalty.store.local import RedeemCheck, RedeemFacts, RefundRecord, SaleResult
from pos_loyalty.store.models import Base
from pos_loyalty.terminal.effects import apply_sale
from tests.conftest import schema_head
from tests.tillsales import REDEEM_ONLY, seed_member_state

NOW = datetime(2026, 11, 23, 12, 0, 0)


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    s = LocalStore(f"sqlite:///{tmp_path / 't.db'}", terminal_id="T-9")
    s.add_member("M-1", "Ada", card_id="C-1", uid="04a1b2c3d4e5f6", tier="Gold", balance=100)
    return s


class TestLookup:
    def test_by_card_and_uid(self, store: LocalStore) -> None:
        """A member is found by card number and by (case-insensitive) UID."""
        rec = store.find_by_card("C-1")
        assert rec is not None and rec.member_id == "M-1" and rec.balance == 100
        assert store.find_by_uid("04A1B2C3D4E5F6") == rec
        assert store.find_by_card("C-2") is None


def _commit(store: LocalStore, txn_id: str, total: int = 1234, *,
            pos_id: str = "P") -> SaleResult:
    """A sale as the till worker writes it: quote, apply_sale, record_sale (TerminalService)."""
    view = store.member_view("M-1")
    assert view is not None
    q = _sale(view, total)
    ref = f"{pos_id}/{txn_id}"
    change = apply_sale(view, q, NOW, DEFAULT_PROGRAM, ref=ref)
    return store.record_sale(pos_id=pos_id, txn_id=txn_id, member_id="M-1", sale=q, now=NOW,
                             entries=change.entries, member_after=change.after)


class TestCommitSale:
    def test_sale_ledger_and_balance_move_together(self, store: LocalStore) -> None:
        """A commit writes the sale, one earn event and the new balance."""
        res = _commit(store, "1", 1234)
        assert (res.points, res.balance_after, res.repeated) == (12, 112, False)
        events = store.ledger("M-1")
        assert [(e.kind, e.points, e.terminal_seq, e.txn_ref, e.terminal_id)
                for e in events] == [("earn", 12, 1, "P/1", "T-9")]
        rec = store.find_by_card("C-1")
        assert rec is not None and rec.balance == 112 and rec.visits == 1

    def test_repeated_commit_returns_first_answer(self, store: LocalStore) -> None:
        """Committing the same (pos_id, txn_id) twice earns once and answers the same."""
        first = _commit(store, "1", 500)
        again = _commit(store, "1", 500)
        assert again.repeated and again.balance_after == first.balance_after == 105
        assert len(store.ledger()) == 1

    def test_sequence_is_gap_free(self, store: LocalStore) -> None:
        """Ledger sequence numbers run 1..n with no gap, repeats included."""
        for i in range(5):
            _commit(store, str(i % 3), 100)
        assert [e.terminal_seq for e in store.ledger()] == [1, 2, 3]

    def test_concurrent_commits_of_one_txn_earn_once(self, tmp_path: Path) -> None:
        """Two writers committing the same transaction at once still earn exactly once."""
        url = f"sqlite:///{tmp_path / 'c.db'}"
        first = LocalStore(url)
        first.add_member("M-1", "Ada", card_id="C-1")
        first.close()
        stores = [LocalStore(url) for _ in range(4)]
        barrier = threading.Barrier(len(stores))
        answers: list[SaleResult] = []

        def commit(s: LocalStore) -> None:
            barrier.wait()
            answers.append(_commit(s, "X", 900))

        threads = [threading.Thread(target=commit, args=(s,)) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rec = stores[0].find_by_card("C-1")
        assert rec is not None and rec.balance == 9
        assert len(stores[0].ledger()) == 1
        assert sorted(a.repeated for a in answers) == [False, True, True, True]
        for s in stores:
            s.close()

    def test_sqlite_is_crash_safe(self, store: LocalStore, tmp_path: Path) -> None:
        """The local SQLite file runs in WAL mode (synchronous=FULL is set per connection)."""
        with sqlite3.connect(tmp_path / "t.db") as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL


class TestOpening:
    """The terminal store is a private SQLite file; anything else is one clear error."""

    def test_a_new_database_and_its_wal_are_private(self, tmp_path: Path) -> None:
        """The file holding the central credential is created 0600, its WAL and SHM too."""
        old = os.umask(0o022)
        try:
            store = LocalStore(f"sqlite:///{tmp_path / 'new.db'}")
            store.add_member("M-1", "Ada", card_id="C-1")
        finally:
            os.umask(old)
        made = sorted(p.name for p in tmp_path.iterdir())
        assert "new.db" in made and "new.db-wal" in made
        for name in made:
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
        store.close()

    @pytest.mark.parametrize("url", ["mysql://u:secret@db/loyalty",
                                     "postgresql://u@db/loyalty", "not a url"])
    def test_only_sqlite_is_accepted_in_one_line(self, url: str) -> None:
        """Another database gets a one-line StoreError (no driver import, no password shown)."""
        for opener in (LocalStore, upgrade_terminal):
            with pytest.raises(StoreError) as err:
                opener(url)
            text = str(err.value)
            assert "\n" not in text and "secret" not in text
            assert ("SQLite only" in text) or ("invalid database URL" in text)

    def test_a_missing_directory_is_a_store_error(self, tmp_path: Path) -> None:
        """A database path in a directory that does not exist names the path."""
        with pytest.raises(StoreError, match="nowhere"):
            LocalStore(f"sqlite:///{tmp_path / 'nowhere' / 't.db'}")


def _sale(member: MemberView, total: int = 1234) -> Quote:
    return quote(member, Basket((BasketLine("A", 1, total),)), NOW, DEFAULT_PROGRAM)


class TestEngineState:
    """The engine's member state is stored beside the columns and read back whole."""

    def test_state_round_trips_and_tap_lookup_is_unchanged(self, store: LocalStore) -> None:
        """Engine state as written, member_view reads; find_by_card still sees the columns."""
        view = store.member_view("M-1")
        assert view == MemberView("M-1", balance=100, tier="Gold")
        richer = replace(view, stamps={"coffee": 9}, coupons={"VIP": 1},
                         birthday=date(1990, 6, 13), lots=(PointsLot(date(2026, 1, 2), 40),),
                         claims={"refer": date(2026, 1, 2)}, segments=frozenset({"students"}))
        seed_member_state(store, richer)
        assert store.member_view("M-1") == richer
        rec = store.find_by_card("C-1")
        assert rec is not None and (rec.balance, rec.tier) == (100, "Gold")
        assert store.member_view("M-404") is None

    def test_members_inserted_without_state_read_as_empty(self, store: LocalStore) -> None:
        """A member row written by raw SQL (as a sync pull does) has an empty engine state."""
        with store.engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO members (member_id, display_name, balance, "
                                 "lifetime_spend, visits) VALUES ('M-2', '', 5, 0, 0)")
        assert store.member_view("M-2") == MemberView("M-2", balance=5)


class TestRecordSale:
    """A sale, its ledger entries and the member's new state are one idempotent write."""

    def test_sale_entries_state_and_quote_are_written(self, store: LocalStore) -> None:
        """Balance moves by the member's entries; the referrer's entry credits the referrer."""
        store.add_member("M-2", "Bob", card_id="C-2", balance=10)
        view = store.member_view("M-1")
        assert view is not None
        q = _sale(view)
        after = replace(view, balance=view.balance + 12 - 50, stamps={"coffee": 3},
                        visits=1, lifetime_spend=q.qualifying_spend)
        entries = (LedgerEntry("M-1", "earn", 12, "P/1"), LedgerEntry("M-1", "redeem", -50,
                   "P/1/redeem"), LedgerEntry("M-2", "earn", 200, "P/1/referral"))
        res = store.record_sale(pos_id="P", txn_id="1", member_id="M-1", sale=q, now=NOW,
                                entries=entries, member_after=after)
        assert (res.points, res.balance_after, res.repeated) == (-38, 62, False)
        assert [(e.member_id, e.kind, e.points) for e in store.ledger()] == [
            ("M-1", "earn", 12), ("M-1", "redeem", -50), ("M-2", "earn", 200)]
        assert store.member_view("M-1") == replace(after, balance=62)
        bob = store.find_by_card("C-2")
        assert bob is not None and bob.balance == 210
        stored = store.sale_record("P", "1")
        assert stored is not None and stored.quote == q.to_dict()
        again = store.record_sale(pos_id="P", txn_id="1", member_id="M-1", sale=q, now=NOW,
                                  entries=entries, member_after=after)
        assert again.repeated and again.balance_after == 62 and len(store.ledger()) == 3

    def test_a_failed_write_leaves_nothing_behind(self, store: LocalStore) -> None:
        """When the sale row cannot be written, no ledger entry, balance or state change stays."""
        with store.engine.begin() as conn:
            conn.exec_driver_sql("CREATE TRIGGER no_sales BEFORE INSERT ON sales "
                                 "BEGIN SELECT RAISE(ABORT, 'disk says no'); END")
        view = store.member_view("M-1")
        assert view is not None
        with pytest.raises(StoreError):
            store.record_sale(pos_id="P", txn_id="1", member_id="M-1", sale=_sale(view),
                              now=NOW, entries=(LedgerEntry("M-1", "earn", 12, "P/1"),),
                              member_after=replace(view, balance=112, stamps={"c": 1}))
        assert store.ledger() == [] and store.member_view("M-1") == view
        assert store.find_sale("P", "1") is None


class TestRecordRefund:
    """Refunds are written once per refund id and remembered per sale."""

    def test_refund_is_idempotent_and_accumulates_returns(self, store: LocalStore) -> None:
        """A repeated refund id changes nothing; returned units add up per sku."""
        view = store.member_view("M-1")
        assert view is not None
        store.record_sale(pos_id="P", txn_id="1", member_id="M-1", sale=_sale(view), now=NOW,
                          entries=(LedgerEntry("M-1", "earn", 12, "P/1"),),
                          member_after=replace(view, balance=112))

        def refund_one() -> RefundRecord:
            return store.record_refund(
                pos_id="P", txn_id="1", refund_id="R1", member_id="M-1", returned={"A": 1},
                entries=(LedgerEntry("M-1", "reversal", -6, "P/1/refund/R1"),),
                member_after=replace(view, balance=106), spend_reversed=600, now=NOW)

        first, again = refund_one(), refund_one()
        assert (first.points, first.balance_after, first.repeated) == (-6, 106, False)
        assert (again.points, again.balance_after, again.repeated) == (-6, 106, True)
        assert [e.points for e in store.ledger("M-1")] == [12, -6]
        stored = store.sale_record("P", "1")
        assert stored is not None
        assert (stored.returned, stored.refunds, stored.refunded_points, stored.last_balance) \
            == ({"A": 1}, 1, -6, 106)


    def test_database_errors_become_store_errors(self, store: LocalStore) -> None:
        """A broken table is reported as a StoreError naming the request, not a SQL exception."""
        view = store.member_view("M-1")
        assert view is not None
        store.record_sale(pos_id="P", txn_id="1", member_id="M-1", sale=_sale(view), now=NOW,
                          member_after=view)
        with store.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE refunds")
        with pytest.raises(StoreError, match="reading refund R1"):
            store.find_refund("P", "1", "R1")
        with pytest.raises(StoreError, match="reading sale P/1"):
            store.sale_record("P", "1")


class TestApplyEntries:
    """Expiry entries are written once even when a run is repeated."""

    def test_same_ref_is_not_written_twice(self, store: LocalStore) -> None:
        """A second write of the same expire ref moves nothing."""
        view = store.member_view("M-1")
        assert view is not None
        entry = LedgerEntry("M-1", "expire", -40, "expire:M-1:2025-01-02")
        assert store.apply_entries(replace(view, balance=60), [entry], NOW) == -40
        assert store.apply_entries(replace(view, balance=60), [entry], NOW) == 0
        rec = store.find_by_card("C-1")
        assert rec is not None and rec.balance == 60
        assert [(e.kind, e.points) for e in store.ledger()] == [("expire", -40)]


class TestMigration:
    """The terminal migrations build exactly the schema the models describe."""

    def test_migrated_schema_matches_models(self, tmp_path: Path) -> None:
        """After upgrade_terminal, Alembic finds no difference from the models."""
        url = f"sqlite:///{tmp_path / 'm.db'}"
        upgrade_terminal(url)
        engine = create_engine(url)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(
                conn, opts={"compare_type": True}), Base.metadata)
        engine.dispose()
        assert diff == []

    def test_upgrade_keeps_members_and_gives_them_empty_state(self, tmp_path: Path) -> None:
        """A t0002 store with members is upgraded; its members read back with no engine state."""
        from alembic import command

        from pos_loyalty.migrations import _config

        url = f"sqlite:///{tmp_path / 'old.db'}"
        engine = create_engine(url)
        with engine.begin() as conn:
            command.upgrade(_config("terminal", conn), "t0002")
            conn.exec_driver_sql("INSERT INTO members (member_id, display_name, balance, "
                                 "lifetime_spend, visits) VALUES ('M-7', 'Old', 70, 0, 0)")
            conn.exec_driver_sql("INSERT INTO terminal_state (id, terminal_id, next_seq, "
                                 "pull_cursor, clock_offset_ms) VALUES (1, 'T', 1, '{}', 0)")
        engine.dispose()
        upgrade_terminal(url)
        store = LocalStore(url)
        try:
            assert store.member_view("M-7") == MemberView("M-7", balance=70)
        finally:
            store.close()

    def test_store_made_without_alembic_at_t0002_is_upgraded(self, tmp_path: Path) -> None:
        """A t0002-level store with no alembic_version gets the state column on upgrade."""
        from alembic import command

        from pos_loyalty.migrations import _config, current_revision

        url = f"sqlite:///{tmp_path / 'adopt.db'}"
        engine = create_engine(url)
        with engine.begin() as conn:
            command.upgrade(_config("terminal", conn), "t0002")
            conn.exec_driver_sql("DROP TABLE alembic_version")
        engine.dispose()
        with pytest.raises(StoreError, match="db upgrade --terminal"):
            LocalStore(url)
        upgrade_terminal(url)
        assert current_revision(url) == schema_head("terminal")
        store = LocalStore(url)
        store.close()


class TestRedeemCheck:
    """An offline redemption is decided on facts read inside the sale's own write."""

    def _redeeming(self, store: LocalStore, txn_id: str, points: int,
                   check: RedeemCheck) -> SaleResult:
        view = store.member_view("M-1")
        assert view is not None
        q = quote(view, Basket((BasketLine("A", 1, 10_000),), redeem_points=points), NOW,
                  REDEEM_ONLY)
        change = apply_sale(view, q, NOW, REDEEM_ONLY, ref=f"P/{txn_id}")
        return store.record_sale(pos_id="P", txn_id=txn_id, member_id="M-1", sale=q, now=NOW,
                                 entries=change.entries, member_after=change.after,
                                 check_redeem=check)

    def test_facts_include_what_this_terminal_redeemed_and_a_refusal_writes_nothing(
            self, store: LocalStore) -> None:
        """The check sees earlier unacked redemptions; when it raises, the sale is not written."""
        store.set_enrollment(server_url="http://central", terminal_id="T-9", store_id="S",
                             credential="T-9.x")
        store.record_sync(now=NOW)
        seen: list[RedeemFacts] = []
        self._redeeming(store, "1", 30, seen.append)
        assert seen == [RedeemFacts("M-1", 100, None, 0, 0)]  # never sent by central

        def refuse(facts: RedeemFacts) -> None:
            seen.append(facts)
            raise LoyaltyError("over the cap")

        with pytest.raises(LoyaltyError, match="over the cap"):
            self._redeeming(store, "2", 20, refuse)
        assert seen[-1] == RedeemFacts("M-1", 70, None, 30, 30)
        assert store.find_sale("P", "2") is None
        assert [e.points for e in store.ledger()] == [-30]
        after = store.member_view("M-1")
        assert after is not None and after.balance == 70

    def test_a_standalone_terminal_has_no_offline_cap(self, store: LocalStore) -> None:
        """Not enrolled with central: the check is not consulted."""
        def never(_facts: RedeemFacts) -> None:
            raise AssertionError("consulted")

        assert self._redeeming(store, "1", 30, never).points == -30
        assert store.redeem_facts("M-1") is None
