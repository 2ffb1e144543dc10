"""The terminal store's two writers, the till worker and the sync worker, and its errors.

Each write is one BEGIN IMMEDIATE transaction: the writers wait for each other, a write that
cannot get the lock within the busy timeout fails whole as a StoreError ("database is
locked"), and a repeated commit after that lands exactly once.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from pos_loyalty.errors import StoreError
from pos_loyalty.migrations import upgrade_terminal
from pos_loyalty.rules import (
    DEFAULT_PROGRAM,
    Basket,
    BasketLine,
    LedgerEntry,
    MemberView,
    quote,
)
from pos_loyalty.store.local import LocalStore
from pos_loyalty.store.sqlite import answer_by
from pos_loyalty.terminal.service import TerminalService
from tests.tillsales import ask, member_tap, ring_up, tap

NOW = datetime(2026, 11, 30, 12)
MEMBERS = ("member_id", "display_name", "tier", "birthday", "status")


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'terminal.db'}"
    upgrade_terminal(url)
    store = LocalStore(url)
    store.add_member("M-1", "Ada", card_id="C-1")
    store.close()
    return url


@pytest.fixture
def store(url: str) -> Iterator[LocalStore]:
    s = LocalStore(url, busy_timeout_s=0.2)
    yield s
    s.close()


class LockHolder:
    """Another process's write transaction, held until released (as a stuck writer would)."""

    def __init__(self, url: str) -> None:
        self.conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        self.conn.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        self.conn.execute("ROLLBACK")
        self.conn.close()


class TestTwoWriters:
    @pytest.mark.slow(seconds=10)
    def test_sales_and_sync_writes_at_once_all_land(self, url: str) -> None:
        """The till worker's sales and the sync worker's pages and acks interleave safely."""
        till_store, sync_store = LocalStore(url), LocalStore(url)
        service = TerminalService(till_store, DEFAULT_PROGRAM, clock=lambda: NOW)
        errors: list[BaseException] = []
        done = threading.Event()

        def sync_worker() -> None:
            i = 0
            try:
                while not done.is_set():
                    sync_store.apply_pull("members", MEMBERS,
                                          [[f"P-{i}", "x", None, None, "active"]],
                                          f"1:{i}", NOW)
                    sync_store.mark_acked([e.event_id for e in sync_store.pending_events(5)])
                    i += 1
            except BaseException as exc:  # reported by the assertion below
                errors.append(exc)

        thread = threading.Thread(target=sync_worker)
        thread.start()
        try:
            replies = [ring_up(service, card_id="C-1", pos_id="P", txn_id=f"T{i}", total=200)
                       for i in range(150)]
        finally:
            done.set()
            thread.join()
        assert errors == []
        assert [r["type"] for r in replies] == ["points.awarded"] * 150
        events = till_store.ledger("M-1")
        assert len(events) == 150 and {e.txn_ref for e in events} == {
            f"P/T{i}" for i in range(150)}
        rec = till_store.find_by_card("C-1")
        assert rec is not None and rec.balance == 300
        assert sync_store.member_count() > 1
        till_store.close()
        sync_store.close()

    def test_a_locked_database_fails_the_commit_whole_and_the_repeat_lands_once(
            self, url: str, store: LocalStore) -> None:
        """Locked past the busy timeout: the till gets `error store`, nothing is written;
        taps still read; after the lock goes, the repeated commit is recorded once."""
        service = TerminalService(store, DEFAULT_PROGRAM, clock=lambda: NOW)
        assert tap(service, member_tap("C-1"))["type"] == "member.identified"
        basket = {"type": "basket.update", "pos_id": "P", "txn_id": "1",
                  "lines": [{"sku": "A", "qty": 1, "unit_price": 500, "category": "misc"}]}
        assert ask(service, basket)["type"] == "quote"
        lock = LockHolder(url)
        try:
            failed = ask(service, {"type": "txn.commit", "pos_id": "P", "txn_id": "1"})
            assert failed["type"] == "error" and failed["code"] == "store"
            assert store.find_by_card("C-1") is not None  # WAL: readers never wait
            with pytest.raises(StoreError, match="database is locked"):
                store.apply_pull("members", MEMBERS, [["M-9", "", None, None, "active"]],
                                 "1:M-9", NOW)
        finally:
            lock.release()
        assert store.ledger() == [] and store.find_sale("P", "1") is None
        answers = [ask(service, {"type": "txn.commit", "pos_id": "P", "txn_id": "1"})
                   for _ in range(2)]
        assert [(a["type"], a["points"], a["repeated"]) for a in answers] == [
            ("points.awarded", 5, False), ("points.awarded", 5, True)]
        assert [e.points for e in store.ledger()] == [5]


class TestAnswerDeadline:
    def test_a_deadline_shortens_this_threads_wait_and_only_that(self, url: str) -> None:
        """Inside answer_by a write gives up at the deadline; the connection then goes
        back to the pool with the full busy timeout, so the next write waits it out."""
        store = LocalStore(url, busy_timeout_s=1.0)
        row = ["M-9", "", None, None, "active"]
        lock = LockHolder(url)
        try:
            began = time.monotonic()
            with answer_by(0.1), pytest.raises(StoreError, match="database is locked"):
                store.apply_pull("members", MEMBERS, [row], "1:M-9", NOW)
            short = time.monotonic() - began
            began = time.monotonic()
            with pytest.raises(StoreError, match="database is locked"):
                store.apply_pull("members", MEMBERS, [row], "1:M-9", NOW)
            full = time.monotonic() - began
        finally:
            lock.release()
            store.close()
        assert short < 0.9 <= full, (short, full)


def calls(store: LocalStore) -> dict[str, Callable[[], Any]]:
    """One call of every public LocalStore method that touches the database."""
    view = MemberView("M-1")
    sale = quote(view, Basket((BasketLine("A", 1, 100),)), NOW, DEFAULT_PROGRAM)
    return {
        "record_sale": lambda: store.record_sale(pos_id="P", txn_id="1", member_id="M-1",
                                                 sale=sale, now=NOW),
        "record_refund": lambda: store.record_refund(
            pos_id="P", txn_id="1", refund_id="R", member_id=None, returned={"A": 1},
            entries=(), member_after=None, spend_reversed=0, now=NOW),
        "find_by_card": lambda: store.find_by_card("C-1"),
        "find_by_uid": lambda: store.find_by_uid("04AA"),
        "member_view": lambda: store.member_view("M-1"),
        "add_member": lambda: store.add_member("M-2", "B", card_id="C-2"),
        "find_sale": lambda: store.find_sale("P", "1"),
        "sale_record": lambda: store.sale_record("P", "1"),
        "find_refund": lambda: store.find_refund("P", "1", "R"),
        "members_with_lots": store.members_with_lots,
        "apply_entries": lambda: store.apply_entries(
            view, [LedgerEntry("M-1", "expire", -1, "x")], NOW),
        "redeem_facts": lambda: store.redeem_facts("M-1"),
        "ledger": store.ledger,
        "member_count": store.member_count,
        "sync_identity": store.sync_identity,
        "pending_events": store.pending_events,
        "pending_count": store.pending_count,
        "mark_acked": lambda: store.mark_acked(["e"]),
        "pull_cursors": store.pull_cursors,
        "apply_pull": lambda: store.apply_pull("members", MEMBERS, [], "", NOW),
        "bulk_load_indexes": lambda: store.bulk_load_indexes(present=True),
        "record_sync": lambda: store.record_sync(now=NOW),
        "set_enrollment": lambda: store.set_enrollment(
            server_url="http://c", terminal_id="T", store_id="S", credential="T.x"),
    }


METHODS = sorted([
    "find_by_card", "find_by_uid", "member_view", "add_member",
    "find_sale", "sale_record", "find_refund", "members_with_lots", "apply_entries",
    "redeem_facts", "ledger", "member_count", "sync_identity",
    "pending_events", "pending_count", "mark_acked", "pull_cursors", "apply_pull",
    "bulk_load_indexes", "record_sync", "set_enrollment", "record_sale", "record_refund"])


class TestOnlyStoreErrors:
    def test_every_method_is_covered(self, store: LocalStore) -> None:
        """The list below names every public method of the store that reads or writes."""
        public = {n for n in dir(LocalStore) if not n.startswith("_")} - {
            "close"}
        assert public == set(calls(store)) == set(METHODS)

    @pytest.mark.parametrize("method", METHODS)
    def test_a_damaged_database_is_a_store_error(self, store: LocalStore, method: str) -> None:
        """With every table gone under a running store, each method raises StoreError."""
        with store.engine.begin() as conn:
            for table in ("cards", "sales", "refunds", "ledger_events", "members",
                          "terminal_state", "tiers", "programs"):
                conn.exec_driver_sql(f"DROP TABLE {table}")
        with pytest.raises(StoreError):
            calls(store)[method]()
