"""The local store: lookups, and the sale + ledger written as one idempotent transaction."""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime
from pathlib import Path

import pytest

from pos_loyalty.store import LocalStore

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


class TestCommitSale:
    def test_sale_ledger_and_balance_move_together(self, store: LocalStore) -> None:
        """A commit writes the sale, one earn event and the new balance."""
        res = store.commit_sale(pos_id="P", txn_id="1", member_id="M-1", basket_total=1234,
                                discount_total=0, points=12, now=NOW)
        assert (res.points, res.balance_after, res.repeated) == (12, 112, False)
        events = store.ledger("M-1")
        assert [(e.kind, e.points, e.terminal_seq, e.txn_ref, e.terminal_id)
                for e in events] == [("earn", 12, 1, "P/1", "T-9")]
        rec = store.find_by_card("C-1")
        assert rec is not None and rec.balance == 112 and rec.visits == 1

    def test_repeated_commit_returns_first_answer(self, store: LocalStore) -> None:
        """Committing the same (pos_id, txn_id) twice earns once and answers the same."""
        first = store.commit_sale(pos_id="P", txn_id="1", member_id="M-1", basket_total=500,
                                  discount_total=0, points=5, now=NOW)
        again = store.commit_sale(pos_id="P", txn_id="1", member_id="M-1", basket_total=500,
                                  discount_total=0, points=5, now=NOW)
        assert again.repeated and again.balance_after == first.balance_after == 105
        assert len(store.ledger()) == 1

    def test_sequence_is_gap_free(self, store: LocalStore) -> None:
        """Ledger sequence numbers run 1..n with no gap, repeats included."""
        for i in range(5):
            store.commit_sale(pos_id="P", txn_id=str(i % 3), member_id="M-1", basket_total=100,
                              discount_total=0, points=1, now=NOW)
        assert [e.terminal_seq for e in store.ledger()] == [1, 2, 3]

    def test_concurrent_commits_of_one_txn_earn_once(self, tmp_path: Path) -> None:
        """Two writers committing the same transaction at once still earn exactly once."""
        url = f"sqlite:///{tmp_path / 'c.db'}"
        LocalStore(url).add_member("M-1", "Ada", card_id="C-1")
        stores = [LocalStore(url) for _ in range(4)]
        barrier = threading.Barrier(len(stores))

        def commit(s: LocalStore) -> None:
            barrier.wait()
            s.commit_sale(pos_id="P", txn_id="X", member_id="M-1", basket_total=900,
                          discount_total=0, points=9, now=NOW)

        threads = [threading.Thread(target=commit, args=(s,)) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rec = stores[0].find_by_card("C-1")
        assert rec is not None and rec.balance == 9
        assert len(stores[0].ledger()) == 1

    def test_sqlite_is_crash_safe(self, store: LocalStore, tmp_path: Path) -> None:
        """The local SQLite file runs in WAL mode (synchronous=FULL is set per connection)."""
        with sqlite3.connect(tmp_path / "t.db") as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
