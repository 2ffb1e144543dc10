"""Offline operation: bounded redemption, outages, kill -9, and the background worker.

Every sale here is made through TerminalService, the code `pos-loyalty run` runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from pos_loyalty.migrations import upgrade_terminal
from pos_loyalty.rules import DEFAULT_PROGRAM
from pos_loyalty.server.app import create_app
from pos_loyalty.server.central import CentralStore, utcnow
from pos_loyalty.server.config import Settings
from pos_loyalty.server.runner import ServerThread
from pos_loyalty.store.local import LocalStore
from pos_loyalty.sync.client import SyncClient, run_sync
from pos_loyalty.sync.policy import OfflinePolicy
from pos_loyalty.sync.worker import SyncWorker, backoff_delay
from pos_loyalty.terminal.service import TerminalService
from tests.conftest import REPO, Central, TerminalFactory
from tests.ports import ReservedPort
from tests.tillsales import (
    REDEEM_ONLY,
    ask,
    member_tap,
    ring_up,
    sale_total,
    sell_through_kills,
    tap,
)

PG_ONLY = pytest.mark.parametrize("central_url", ["postgresql"], indirect=True)


def _wait(cond: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def pending(local: LocalStore, member_id: str) -> tuple[int, int]:
    """Unacknowledged redeemed points: this member's, and the whole terminal's."""
    facts = local.redeem_facts(member_id)
    assert facts is not None
    return facts.member_pending, facts.terminal_pending


def till(local: LocalStore, policy: OfflinePolicy, now: datetime) -> TerminalService:
    """The daemon's service on this store, with a fixed clock and an offline policy."""
    return TerminalService(local, REDEEM_ONLY, clock=lambda: now, offline_policy=policy)


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
        s1, s2 = till(t1.local, policy, now), till(t2.local, policy, now)
        # central is now out of reach for both: they only use their caches
        a = ring_up(s1, card_id="C1", pos_id="P1", txn_id="a", total=1000, redeem=60)
        a2 = ring_up(s1, card_id="C1", pos_id="P1", txn_id="a2", total=1000, redeem=10)
        b = ring_up(s2, card_id="C1", pos_id="P2", txn_id="b", total=1000, redeem=60)
        b2 = ring_up(s2, card_id="C1", pos_id="P2", txn_id="b2", total=1000, redeem=1)
        assert a["type"] == b["type"] == "points.awarded"
        assert a["points"] == b["points"] == -60 and a["balance_after"] == b["balance_after"] == 40
        assert a2["type"] == b2["type"] == "error"
        assert "limit" in a2["message"] and "limit" in b2["message"]
        again = ask(s1, {"type": "txn.commit", "pos_id": "P1", "txn_id": "a"})
        assert again["repeated"] and again["points"] == -60
        assert pending(t1.local, "M1") == (60, 60)
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
        late = till(t.local, policy, utcnow() + timedelta(seconds=601))
        old = ring_up(late, card_id="C-M1", pos_id="P", txn_id="x", total=1000, redeem=5)
        assert old["type"] == "error" and "too old" in old["message"]
        now = till(t.local, policy, utcnow())
        ok = ring_up(now, card_id="C-M1", pos_id="P", txn_id="y", total=1000, redeem=50)
        assert ok["type"] == "points.awarded"
        over = ring_up(now, card_id="C-M2", pos_id="P", txn_id="z", total=1000, redeem=30)
        assert over["type"] == "error" and "budget" in over["message"]
        assert pending(t.local, "M1") == (50, 50)

    def test_the_cap_is_checked_in_the_sale_write_itself(
            self, central: Central, terminals: TerminalFactory) -> None:
        """Two sales quoted within the cap and committed at once: only one redemption lands."""
        central.store.add_member("M1", "Ann", card_id="C1")
        central.store.adjust_points("M1", 500, "opening")
        t = terminals()
        with SyncClient(t.server_url, t.credential) as c:
            run_sync(t.local, c)
        policy = OfflinePolicy(member_cap=60, terminal_budget=1000, max_balance_age_s=3600)
        now = utcnow()
        # two tills of one terminal (the daemon's worker and a second one on the same file)
        tills = [till(t.local, policy, now), till(LocalStore(t.local.url), policy, now)]
        for i, service in enumerate(tills):
            tap(service, member_tap("C1"))
            ask(service, {"type": "basket.update", "pos_id": f"P{i}", "txn_id": "1",
                                "lines": [{"sku": "X", "qty": 1, "unit_price": 1000,
                                           "category": "misc"}]})
            quoted = ask(service, {"type": "redeem.request", "pos_id": f"P{i}",
                                         "txn_id": "1", "points": 60})
            assert quoted["type"] == "quote"  # each alone is within the cap
        barrier = threading.Barrier(2)
        answers: list[dict[str, object]] = []

        def commit(i: int) -> None:
            barrier.wait()
            answers.append(ask(tills[i], {"type": "txn.commit", "pos_id": f"P{i}",
                                                "txn_id": "1"}))

        threads = [threading.Thread(target=commit, args=(i,)) for i in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        tills[1].store.close()
        assert sorted(str(a["type"]) for a in answers) == ["error", "points.awarded"]
        assert pending(t.local, "M1") == (60, 60)
        assert [e.points for e in t.local.ledger("M1")] == [-60]


@pytest.fixture
def down_central(central_url: str,
                 reserved_port: ReservedPort) -> Iterator[tuple[str, CentralStore, int]]:
    """A central database whose HTTP server is not running yet (port reserved)."""
    store = CentralStore(central_url)
    yield central_url, store, reserved_port.port
    store.close()


class TestOutage:
    @PG_ONLY
    @pytest.mark.timeout(900)  # 10,000 single-sale transactions on a shared, noisy machine
    @pytest.mark.slow(seconds=60)
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
                            backoff_base_s=0.05, backoff_cap_s=0.5, jitter=lambda: 1.0)
        service = TerminalService(local, DEFAULT_PROGRAM,
                                  clock=lambda: datetime(2026, 5, 1, 9))
        worker.start()
        try:
            began = time.monotonic()
            for i in range(10_000):
                reply = ring_up(service, card_id="C1", pos_id="POS-1", txn_id=f"T{i}",
                                total=300)
                assert reply["type"] == "points.awarded" and reply["points"] == 3
                worker.trigger()  # as the daemon does after every sale
            outage_s = time.monotonic() - began
            assert worker.failures > 0 and local.pending_count() == 10_000
            # a sale never bypasses the backoff: failed rounds follow the clock, not the
            # sales (0.05, 0.1, 0.2, 0.4, then every 0.5 s at the cap)
            assert worker.failures <= 5 + outage_s / 0.5
            with ServerThread(app, port=port):
                # no sale and no trigger: the worker retries on its own
                _wait(lambda: local.pending_count() == 0, timeout=120)
                _wait(lambda: worker.last_report is not None and worker.last_report.ok)
        finally:
            worker.stop()
        assert store.ledger_count(tid) == 10_000
        assert store.balance("M1") == 30_000 == store.ledger_sum("M1")
        rec = local.find_by_card("C1")
        assert rec is not None and rec.balance == 30_000
        local.close()

    def test_retries_follow_the_backoff_whatever_the_till_does(
            self, tmp_path: Path, reserved_port: ReservedPort) -> None:
        """During a backoff, triggers (one per sale) start no round; stop() still ends it."""
        url = f"sqlite:///{tmp_path / 't.db'}"
        upgrade_terminal(url)
        local = LocalStore(url)
        worker = SyncWorker(local, reserved_port.url, "T.x", interval_s=0.05,
                            backoff_base_s=30, jitter=lambda: 1.0)
        worker.start()
        try:
            _wait(lambda: worker.failures == 1)
            for _ in range(200):
                worker.trigger()
            time.sleep(0.5)  # a trigger that cut the 30 s backoff would fail again by now
            assert worker.failures == 1
        finally:
            began = time.monotonic()
            worker.stop()
        assert not worker.running and time.monotonic() - began < 10
        local.close()

class TestKillNine:
    @PG_ONLY
    @pytest.mark.timeout(600)
    @pytest.mark.slow(seconds=25)
    def test_sigkill_during_sales_and_sync_loses_and_doubles_nothing(
            self, central: Central, terminals: TerminalFactory) -> None:
        """A terminal process killed with SIGKILL at random moments converges exactly once."""
        central.store.add_member("M1", "Ann", card_id="C1")
        t = terminals()
        with SyncClient(t.server_url, t.credential) as c:
            run_sync(t.local, c)
        total = 1000
        sell_through_kills(t.local.url, t.server_url, t.credential, total=total, kills=6,
                           seed=1234)
        with SyncClient(t.server_url, t.credential) as c:
            report = run_sync(t.local, c)
        assert report.ok and t.local.pending_count() == 0
        expected = sum(sale_total(i) // 100 for i in range(total))
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
            self, tmp_path: Path, reserved_port: ReservedPort) -> None:
        """With central down, sync_once returns ok=False and the events stay pending."""
        url = f"sqlite:///{tmp_path / 't.db'}"
        upgrade_terminal(url)
        local = LocalStore(url)
        local.add_member("M1", "", card_id="C1")
        ring_up(TerminalService(local), card_id="C1", pos_id="P", txn_id="1", total=100)
        worker = SyncWorker(local, reserved_port.url, "T.x", interval_s=1)
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
            _wait(lambda: t.local.find_by_card("C1") is not None)
            service = TerminalService(t.local)
            for i in range(20):
                ring_up(service, card_id="C1", pos_id="P", txn_id=str(i), total=200)
                worker.trigger()
            _wait(lambda: central.store.balance("M1") == 40)
        finally:
            worker.stop()
        assert t.local.pending_count() == 0
        ident = t.local.sync_identity()
        assert ident.last_sync_at is not None

    @pytest.mark.parametrize("answer", [b'{"results": "x"}', b'{"results": [1]}', b"[]",
                                        b"not json", b'{"results": [], "acked_seq": "z"}'])
    def test_a_nonsense_answer_from_central_is_a_failed_round(
            self, tmp_path: Path, answer: bytes) -> None:
        """A peer answering junk makes sync_once report an error; nothing is marked acked."""
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Junk(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Junk)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        url = f"sqlite:///{tmp_path / 't.db'}"
        upgrade_terminal(url)
        local = LocalStore(url)
        local.add_member("M1", "", card_id="C1")
        ring_up(TerminalService(local), card_id="C1", pos_id="P", txn_id="1", total=100)
        worker = SyncWorker(local, f"http://127.0.0.1:{httpd.server_address[1]}", "T.x", 1)
        try:
            report = worker.sync_once()
        finally:
            worker.stop()
            httpd.shutdown()
            httpd.server_close()
        assert not report.ok and report.error
        assert local.pending_count() == 1
        local.close()


class TestWrongClock:
    def test_an_offset_from_a_wrong_clock_does_not_outlive_the_process(
            self, central: Central, terminals: TerminalFactory) -> None:
        """A terminal that booted in 1970, fixed and restarted, pushes no stale offset."""
        central.store.add_member("M1", "Ann", card_id="C1")
        t = terminals()
        with SyncClient(t.server_url, t.credential) as c:
            assert run_sync(t.local, c).ok
        decades = (datetime(2026, 1, 1) - datetime(1970, 1, 1)) // timedelta(milliseconds=1)
        t.local.record_sync(now=datetime(1970, 1, 1), clock_offset_ms=decades)
        assert t.local.sync_identity().clock_offset_ms == decades
        ring_up(TerminalService(t.local, clock=lambda: datetime(1970, 1, 1, 0, 5)),
                card_id="C1", pos_id="P", txn_id="1", total=700)
        restarted = LocalStore(t.local.url)  # the clock is right again after the restart
        try:
            assert restarted.sync_identity().clock_offset_ms is None
            with SyncClient(t.server_url, t.credential) as c:
                report = run_sync(restarted, c)
            assert report.ok and report.stored == 1, report.error
            assert report.clock_offset_ms is not None and abs(report.clock_offset_ms) < 60_000
            assert restarted.pending_count() == 0
        finally:
            restarted.close()
        assert central.store.balance("M1") == 7
