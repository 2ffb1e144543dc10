"""Sale summaries through an outage and a kill -9: each reaches central exactly once."""

from __future__ import annotations

import socket
import time
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from pos_loyalty.migrations import upgrade_terminal
from pos_loyalty.rules import DEFAULT_PROGRAM
from pos_loyalty.server.app import create_app
from pos_loyalty.server.central import CentralStore
from pos_loyalty.server.config import Settings
from pos_loyalty.server.runner import ServerThread
from pos_loyalty.store.central_models import SaleLine, SaleRecord
from pos_loyalty.store.local import LocalStore
from pos_loyalty.sync.client import SyncClient, run_sync
from pos_loyalty.sync.worker import SyncWorker
from pos_loyalty.terminal.service import TerminalService
from tests.conftest import Central, TerminalFactory
from tests.storerows import unpushed_sales
from tests.tillsales import ring_up, sell_through_kills


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(cond: object, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def counts(store: CentralStore, terminal_id: str) -> tuple[int, int, int]:
    """(sale records, distinct txn ids, lines) central holds for a terminal."""
    with store.read() as conn:
        n, txns = conn.execute(select(func.count(), func.count(SaleRecord.txn_id.distinct()))
                               .where(SaleRecord.terminal_id == terminal_id)).one()
        lines = conn.execute(select(func.count()).select_from(SaleLine).join(
            SaleRecord, SaleRecord.sale_id == SaleLine.sale_id).where(
            SaleRecord.terminal_id == terminal_id)).scalar_one()
    return int(n), int(txns), int(lines)


def test_sales_made_while_central_is_down_arrive_once(central_url: str,
                                                      tmp_path: Path) -> None:
    """500 sales during an outage: the worker pushes every summary once when central is
    back, and the ledger with them."""
    store = CentralStore(central_url)
    port = _free_port()
    store.add_member("M1", "Ann", card_id="C1")
    tid, code = store.add_terminal("S1")
    app = create_app(Settings(db_url=central_url), store=store, migrate=False)
    local_url = f"sqlite:///{tmp_path / 'terminal.db'}"
    upgrade_terminal(local_url)
    local = LocalStore(local_url)
    url = f"http://127.0.0.1:{port}"
    with ServerThread(app, port=port), SyncClient(url) as anon:
        answer = anon.enroll(code)
        local.set_enrollment(server_url=url, terminal_id=tid, store_id="S1",
                             credential=answer["credential"])
        with SyncClient(url, answer["credential"]) as c:
            run_sync(local, c)
    worker = SyncWorker(local, url, answer["credential"], interval_s=0.2,
                        backoff_base_s=0.05, backoff_cap_s=0.3, jitter=lambda: 1.0)
    service = TerminalService(local, DEFAULT_PROGRAM, clock=lambda: datetime(2026, 11, 1, 9))
    worker.start()
    try:
        for i in range(500):
            ring_up(service, card_id="C1" if i % 2 else None, pos_id="POS-1",
                    txn_id=f"T{i}", total=100 + i)
            worker.trigger()
        assert unpushed_sales(local.engine) == 500
        with ServerThread(app, port=port):
            _wait(lambda: unpushed_sales(local.engine) == 0
                  and local.pending_count() == 0)
    finally:
        worker.stop()
    assert counts(store, tid) == (500, 500, 500)
    with store.read() as conn:
        total = conn.execute(select(func.sum(SaleRecord.basket_total))).scalar_one()
    assert total == sum(100 + i for i in range(500))
    local.close()
    store.close()


@pytest.mark.parametrize("central_url", ["postgresql"], indirect=True)
@pytest.mark.timeout(600)
def test_sigkill_during_sales_and_pushes_stores_each_sale_once(
        central: Central, terminals: TerminalFactory) -> None:
    """A terminal killed with SIGKILL at random moments: every sale at central once."""
    central.store.add_member("M1", "Ann", card_id="C1")
    t = terminals()
    with SyncClient(t.server_url, t.credential) as c:
        run_sync(t.local, c)
    total = 400
    sell_through_kills(t.local.url, t.server_url, t.credential, total=total, kills=3,
                       seed=15, interval_s=0.02, batch=50)
    with SyncClient(t.server_url, t.credential) as c:
        report = run_sync(t.local, c)
    assert report.ok and unpushed_sales(t.local.engine) == 0
    assert counts(central.store, t.terminal_id) == (total, total, total)
