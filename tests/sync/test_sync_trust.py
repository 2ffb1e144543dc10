"""What a terminal sees when central holds or refuses to merge its events."""

from __future__ import annotations

import logging
from datetime import datetime

import pytest
from sqlalchemy import update

from pos_loyalty.rules.program import DEFAULT_PROGRAM
from pos_loyalty.store.local import LocalStore
from pos_loyalty.store.models import LedgerEvent
from pos_loyalty.sync.client import SyncClient, SyncReport, run_sync
from pos_loyalty.sync.worker import SyncWorker
from pos_loyalty.terminal.service import TerminalService
from tests.conftest import Central, TerminalFactory, TerminalHandle
from tests.tillsales import ring_up

NOW = datetime(2026, 3, 1, 12, 0)


def sell(local: LocalStore, *, card_id: str, txn_id: str, total: int) -> None:
    """One sale of ``total`` minor units, made as the daemon makes it (1 pt per 1.00)."""
    service = TerminalService(local, DEFAULT_PROGRAM, clock=lambda: NOW)
    reply = ring_up(service, card_id=card_id, pos_id="P", txn_id=txn_id, total=total)
    assert reply["type"] == "points.awarded", reply


def sync(t: TerminalHandle) -> SyncReport:
    with SyncClient(t.server_url, t.credential) as client:
        return run_sync(t.local, client)


class TestHeldAndConflict:
    def test_held_event_is_reported_acked_and_released_by_store_it(
            self, central: Central, terminals: TerminalFactory) -> None:
        """A sale for a member central does not know is held: the terminal reports it, stops
        resending it, and the points count once store IT adds the member and releases it."""
        t = terminals()
        sync(t)
        # a member this terminal has (signed up here while central lost it) but central not
        t.local.add_member("NEW1", "New", card_id="C-NEW1")
        sell(t.local, card_id="C-NEW1", txn_id="T1", total=2500)  # 25 pts
        report = sync(t)
        assert report.held == 1 and report.stored == 0
        assert report.problems == [f"event {t.local.ledger()[0].event_id}: held: "
                                   "unknown member"]
        assert t.local.pending_count() == 0
        assert sync(t).pushed == 0
        central.store.add_member("NEW1", "New")
        [held] = central.store.held()
        central.store.resolve_held(held.event_id, release=True, note="member signed up late")
        assert central.store.balance("NEW1") == 25 == central.store.ledger_sum("NEW1")

    def test_conflicting_event_is_reported_and_logged_by_the_worker(
            self, central: Central, terminals: TerminalFactory,
            caplog: pytest.LogCaptureFixture) -> None:
        """An event central holds with other content comes back as a conflict; the worker
        logs it and the outbox does not stall on it."""
        central.store.add_member("M1", "Ann", card_id="C1")
        t = terminals()
        sync(t)
        sell(t.local, card_id="C1", txn_id="T1", total=1000)  # 10 pts
        assert sync(t).stored == 1
        with t.local.engine.begin() as conn:  # a restored backup, edited
            conn.execute(update(LedgerEvent).values(acked=False, points=9999))
        worker = SyncWorker(t.local, t.server_url, t.credential, interval_s=60)
        try:
            with caplog.at_level(logging.WARNING, logger="pos_loyalty.sync"):
                report = worker.sync_once()
        finally:
            worker.stop()
        assert report.ok and report.conflicts == 1 and report.pending_after == 0
        assert "conflict" in caplog.text and "other content" in caplog.text
        assert central.store.balance("M1") == 10
        assert [r.kind for r in central.store.reconcile().review] == ["conflict"]
