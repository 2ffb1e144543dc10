"""Offline operation: bounded redemption, outages, kill -9, and the background worker."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from pos_loyalty.migrations import upgrade_terminal
from pos_loyalty.server.app import create_app
from pos_loyalty.server.central import CentralStore, utcnow
from pos_loyalty.server.config import Settings
from pos_loyalty.server.runner import ServerThread
from pos_loyalty.store.local import LocalStore
from pos_loyalty.sync.client import SyncClient, run_sync
from pos_loyalty.sync.policy import OfflinePolicy
from pos_loyalty.sync.worker import SyncWorker, backoff_delay
from tests.conftest import REPO, Central, TerminalFactory

PG_ONLY = pytest.mark.parametrize("central_url", ["postgresql"], indirect=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(cond: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


class TestOfflineRedemption:
    def test_two_offline_terminals_are_bounded_by_the_cap_and_overdraft_is_reported(
            self, central: Central, terminals: TerminalFactory) -> None:
        """Each terminal redeems at most the member cap offline; the shortfall is reported."""
        central.store.add_member("M1", "Ann", card_id="C1")
        central.store.adjust_points("M1", 100, "opening")
        policy = OfflinePolicy(member_cap=60, terminal_budget=1000, max_balance_age_s=3600)
        t1, t2 = terminals(), terminals()
        for t in (t1, t2):
            with SyncClient(t.server_url, t.credential) as c:
                run_sync(t.local, c)
        now = utcnow()
        # central is now out of reach for both: they only use their caches
        a = t1.local.redeem(pos_id="P1", txn_id="a", member_id="M1", points=60, now=now,
                            policy=policy)
        a2 = t1.local.redeem(pos_id="P1", txn_id="a2", member_id="M1", points=10, now=now,
                             policy=policy)
        b = t2.local.redeem(pos_id="P2", txn_id="b", member_id="M1", points=60, now=now,
                            policy=policy)
        b2 = t2.local.redeem(pos_id="P2", txn_id="b2", member_id="M1", points=1, now=now,
                             policy=policy)
        assert a.allowed and b.allowed and a.balance_after == b.balance_after == 40
        assert not a2.allowed and "limit" in a2.reason
        assert not b2.allowed and "limit" in b2.reason
        again = t1.local.redeem(pos_id="P1", txn_id="a", member_id="M1", points=60, now=now,
                                policy=policy)
        assert again.repeated and again.points == 60 and t1.local.pending_redeemed("M1") == 60
        for t in (t1, t2):
            with SyncClient(t.server_url, t.credential) as c:
                run_sync(t.local, c)
        assert central.store.balance("M1") == 100 - 120
        report = central.store.reconcile()
        assert [(o.member_id, o.points_short) for o in report.overdrafts] == [("M1", 20)]
        env = dict(os.environ, PYTHONPATH=str(REPO))
        out = subprocess.run(
            [sys.executable, "-m", "pos_loyalty", "report", "reconcile", "--db", central.db_url],
            capture_output=True, text=True, env=env, check=True).stdout
        assert "member M1 short 20 pts" in out
        assert t2.terminal_id in out

    def test_stale_cache_and_budget_refuse_redemption(self, central: Central,
                                                      terminals: TerminalFactory) -> None:
        """No offline redemption on an old cache, nor past the terminal's budget."""
        for m in ("M1", "M2"):
            central.store.add_member(m, "", card_id=f"C-{m}")
            central.store.adjust_points(m, 100)
        t = terminals()
        with SyncClient(t.server_url, t.credential) as c:
            run_sync(t.local, c)
        policy = OfflinePolicy(member_cap=50, terminal_budget=70, max_balance_age_s=600)
        late = utcnow() + timedelta(seconds=601)
        old = t.local.redeem(pos_id="P", txn_id="x", member_id="M1", points=5, now=late,
                             policy=policy)
        assert not old.allowed and "too old" in old.reason
        now = utcnow()
        assert t.local.redeem(pos_id="P", txn_id="y", member_id="M1", points=50, now=now,
                              policy=policy).allowed
        over = t.local.redeem(pos_id="P", txn_id="z", member_id="M2", points=30, now=now,
                              policy=policy)
        assert not over.allowed and "budget" in over.reason
        assert t.local.pending_redeemed() == 50


@pytest.fixture
def down_central(central_url: str) -> Iterator[tuple[str, CentralStore, int]]:
    """A central database whose HTTP server is not running yet (port reserved)."""
    store = CentralStore(central_url)
    yield central_url, store, _free_port()
    store.close()


class TestOutage:
    @PG_ONLY
    def test_ten_thousand_sales_during_an_outage_land_exactly_once(
            self, down_central: tuple[str, CentralStore, int], tmp_path: Path) -> None:
        """10,000 sales made while central is down all arrive once when it comes back."""
        db_url, store, port = down_central
        store.add_member("M1", "Ann", card_id="C1")
        tid, code = store.add_terminal("S1")
        app = create_app(Settings(db_url=db_url), store=store, migrate=False)
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
        worker = SyncWorker(local, url, answer["credential"], interval_s=0.2, batch=2000,
                            backoff_base_s=0.05, backoff_cap_s=0.5)
        worker.start()
        try:
            now = datetime(2026, 5, 1, 9)
            for i in range(10_000):
                local.commit_sale(pos_id="POS-1", txn_id=f"T{i}", member_id="M1",
                                  basket_total=500, discount_total=0, points=3,
                                  now=now + timedelta(seconds=i))
            assert worker.failures > 0 and local.pending_count() == 10_000
            with ServerThread(app, port=port):
                worker.trigger()
                _wait(lambda: local.pending_count() == 0, timeout=120)
                _wait(lambda: worker.last_report is not None and worker.last_report.ok)
        finally:
            worker.stop()
        assert store.ledger_count(tid) == 10_000
        assert store.balance("M1") == 30_000 == store.ledger_sum("M1")
        rec = local.find_by_card("C1")
        assert rec is not None and rec.balance == 30_000
        local.close()


CHILD = r"""
import sys, time
from datetime import datetime, timedelta
from pos_loyalty.store.local import LocalStore
from pos_loyalty.sync.worker import SyncWorker
url, server, cred, start, total = sys.argv[1:6]
local = LocalStore(url)
worker = SyncWorker(local, server, cred, interval_s=0.05, batch=100)
worker.start()
for i in range(int(start), int(total)):
    local.commit_sale(pos_id="POS-1", txn_id=f"T{i}", member_id="M1", basket_total=100,
                      discount_total=0, points=1 + i % 7, now=datetime(2026, 6, 1))
    print(i, flush=True)
worker.stop()
"""


class TestKillNine:
    @PG_ONLY
    def test_sigkill_during_sales_and_sync_loses_and_doubles_nothing(
            self, central: Central, terminals: TerminalFactory) -> None:
        """A terminal process killed with SIGKILL at random moments converges exactly once."""
        central.store.add_member("M1", "Ann", card_id="C1")
        t = terminals()
        with SyncClient(t.server_url, t.credential) as c:
            run_sync(t.local, c)
        total, start = 1000, 0
        rng = random.Random(1234)
        env = dict(os.environ, PYTHONPATH=str(REPO))
        args = [sys.executable, "-c", CHILD, t.local.url, t.server_url, t.credential]
        for _ in range(6):
            child = subprocess.Popen([*args, str(start), str(total)], stdout=subprocess.PIPE,
                                     text=True, env=env)
            time.sleep(rng.uniform(0.8, 2.5))
            child.send_signal(signal.SIGKILL)
            out, _ = child.communicate()
            done = [int(x) for x in out.split()]
            # the till repeats the commit that may have been in flight: idempotent per txn
            start = done[-1] if done else start
        subprocess.run([*args, str(start), str(total)], capture_output=True, text=True,
                       env=env, check=True)
        with SyncClient(t.server_url, t.credential) as c:
            report = run_sync(t.local, c)
        assert report.ok and t.local.pending_count() == 0
        expected = sum(1 + i % 7 for i in range(total))
        local_events = t.local.ledger()
        assert len(local_events) == total
        assert len({e.txn_ref for e in local_events}) == total
        assert central.store.ledger_count(t.terminal_id) == total
        assert central.store.balance("M1") == expected == central.store.ledger_sum("M1")


class TestWorker:
    def test_backoff_is_exponential_capped_and_jittered(self) -> None:
        """Delays double per failure up to the cap and are drawn below that ceiling."""
        assert backoff_delay(0, base_s=1, cap_s=60) == 0
        assert [backoff_delay(n, base_s=1, cap_s=60, rand=lambda: 1.0)
                for n in (1, 2, 3, 7, 50)] == [1, 2, 4, 60, 60]
        assert backoff_delay(3, base_s=1, cap_s=60, rand=lambda: 0.25) == 1.0

    def test_sync_once_reports_an_unreachable_server_without_raising(
            self, tmp_path: Path) -> None:
        """With central down, sync_once returns ok=False and the events stay pending."""
        url = f"sqlite:///{tmp_path / 't.db'}"
        upgrade_terminal(url)
        local = LocalStore(url)
        local.apply_pull("members", ("member_id", "display_name", "tier", "birthday", "status"),
                         [["M1", "", None, None, "active"]], "1:M1", datetime(2026, 1, 1))
        local.commit_sale(pos_id="P", txn_id="1", member_id="M1", basket_total=100,
                          discount_total=0, points=1, now=datetime(2026, 1, 1))
        worker = SyncWorker(local, f"http://127.0.0.1:{_free_port()}", "T.x", interval_s=1)
        report = worker.sync_once()
        assert not report.ok and "unreachable" in (report.error or "")
        assert local.pending_count() == 1
        worker.start()
        assert worker.running
        worker.stop(timeout=5)
        assert not worker.running
        local.close()

    def test_background_worker_pushes_new_sales(self, central: Central,
                                                terminals: TerminalFactory) -> None:
        """Sales made while the worker runs reach central without any call from the till."""
        central.store.add_member("M1", "", card_id="C1")
        t = terminals()
        worker = SyncWorker(t.local, t.server_url, t.credential, interval_s=0.05)
        worker.start()
        try:
            _wait(lambda: t.local.member_count() == 1)
            for i in range(20):
                t.local.commit_sale(pos_id="P", txn_id=str(i), member_id="M1", basket_total=100,
                                    discount_total=0, points=2, now=datetime(2026, 1, 1))
            worker.trigger()
            _wait(lambda: central.store.balance("M1") == 40)
        finally:
            worker.stop()
        assert t.local.pending_count() == 0
        ident = t.local.sync_identity()
        assert ident.last_sync_at is not None
