"""Sale summaries reach central exactly once, over live HTTP, on SQLite and PostgreSQL.

Sales, refunds and voids are made through TerminalService (what `pos-loyalty run` runs) and
pushed by the sync client a terminal runs; central is a real uvicorn server.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from pos_loyalty.rules import DEFAULT_PROGRAM
from pos_loyalty.server.central import utcnow
from pos_loyalty.store import sale_outbox
from pos_loyalty.store.central_models import ReviewItem, SaleLine, SaleRecord
from pos_loyalty.store.models import Sale
from pos_loyalty.sync.client import SyncClient, run_sync
from pos_loyalty.terminal.service import TerminalService
from tests.conftest import Central, TerminalFactory, TerminalHandle
from tests.storerows import unpushed_sales
from tests.tillsales import ask, member_tap, tap

LINES = [{"sku": "MILK", "qty": 2, "unit_price": 150, "category": "dairy"},
         {"sku": "BREAD", "qty": 1, "unit_price": 300, "category": "bakery"}]


def sell(service: TerminalService, txn_id: str, *, card_id: str | None = "C1",
         lines: list[dict[str, Any]] = LINES, pos_id: str = "P1") -> dict[str, Any]:
    if card_id is not None:
        assert tap(service, member_tap(card_id))["type"] == "member.identified"
    q = ask(service, {"type": "basket.update", "pos_id": pos_id, "txn_id": txn_id,
                      "lines": lines})
    assert q["type"] == "quote", q
    return ask(service, {"type": "txn.commit", "pos_id": pos_id, "txn_id": txn_id})


def sync(t: TerminalHandle) -> Any:
    with SyncClient(t.server_url, t.credential) as c:
        report = run_sync(t.local, c)
    assert report.sales_error is None
    return report


def central_sales(central: Central) -> list[Any]:
    with central.store.read() as conn:
        return list(conn.execute(select(SaleRecord).order_by(SaleRecord.terminal_time,
                                                            SaleRecord.kind)).all())


def central_lines(central: Central, sale_id: str) -> list[tuple[str, str, int, int]]:
    with central.store.read() as conn:
        return [tuple(r) for r in conn.execute(  # type: ignore[misc]
            select(SaleLine.sku, SaleLine.category, SaleLine.qty, SaleLine.amount)
            .where(SaleLine.sale_id == sale_id).order_by(SaleLine.line_no))]


@pytest.fixture
def shop(central: Central, terminals: TerminalFactory) -> tuple[TerminalHandle, TerminalService]:
    central.store.add_member("M1", "Ann", card_id="C1")
    t = terminals("S1")
    sync(t)
    clock = iter(datetime(2026, 11, 2, 9) + timedelta(minutes=i) for i in range(10_000))
    return t, TerminalService(t.local, DEFAULT_PROGRAM, clock=lambda: next(clock))


class TestPush:
    def test_sales_refund_and_void_arrive_once_with_their_baskets(
            self, central: Central, shop: tuple[TerminalHandle, TerminalService]) -> None:
        """A member's sale, an anonymous sale, a partial refund and a void each arrive once,
        with lines, categories and a refund's figures negative."""
        t, service = shop
        assert sell(service, "T1")["points"] == 6
        sell(service, "T2", card_id=None)
        ask(service, {"type": "refund", "pos_id": "P1", "txn_id": "T1", "refund_id": "R1",
                      "lines": [{"sku": "MILK", "qty": 1}]})
        assert tap(service, member_tap("C1"))["type"] == "member.identified"
        ask(service, {"type": "basket.update", "pos_id": "P1", "txn_id": "T3",
                      "lines": LINES[:1]})
        ask(service, {"type": "txn.void", "pos_id": "P1", "txn_id": "T3"})
        first = sync(t)
        assert first.sales_pushed == 4
        assert sync(t).sales_pushed == 0  # nothing left, nothing sent again
        rows = central_sales(central)
        assert [(r.kind, r.txn_id, r.member_id, r.basket_total, r.paid_total)
                for r in rows] == [
            ("sale", "T1", "M1", 600, 600), ("sale", "T2", None, 600, 600),
            ("refund", "T1", "M1", -150, -150), ("void", "T3", "M1", 300, 0)]
        sale, _, refund, void = rows
        assert (sale.points_earned, sale.points, sale.store_id, sale.terminal_id) == (
            6, 6, "S1", t.terminal_id)
        assert central_lines(central, sale.sale_id) == [
            ("MILK", "dairy", 2, 300), ("BREAD", "bakery", 1, 300)]
        assert central_lines(central, refund.sale_id) == [("MILK", "dairy", -1, -150)]
        # the terminal takes back a returned unit's share of points rounded up
        assert refund.refund_id == "R1" and refund.points == -2 and \
            refund.points_earned == -2
        assert central_lines(central, void.sale_id) == [("MILK", "dairy", 2, 300)]
        with t.local.engine.connect() as conn:
            committed = conn.execute(select(Sale.committed_at).where(
                Sale.txn_id == "T1")).scalar_one()
        assert sale.terminal_time == committed and sale.flags == ""

    def test_a_push_repeated_after_a_lost_answer_is_a_duplicate(
            self, central: Central, shop: tuple[TerminalHandle, TerminalService]) -> None:
        """Central stored a batch but the terminal never marked it: the repeat stores
        nothing twice and is acknowledged."""
        t, service = shop
        for i in range(3):
            sell(service, f"T{i}")
        sync(t)
        with t.local.engine.begin() as conn:  # as if killed before the answer came back
            conn.execute(update(sale_outbox.SaleSummary).values(pushed=False))
        again = sync(t)
        assert again.sales_pushed == 3 and len(central_sales(central)) == 3
        assert unpushed_sales(t.local.engine) == 0

    def test_other_content_for_a_known_key_is_a_conflict_kept_for_review(
            self, central: Central, shop: tuple[TerminalHandle, TerminalService]) -> None:
        """A changed body for a stored key replaces nothing and is listed for review."""
        t, service = shop
        sell(service, "T1")
        sync(t)
        body = sale_outbox.unpushed(t.local.engine) or []
        assert body == []
        with t.local.engine.begin() as conn:
            raw = conn.execute(select(sale_outbox.SaleSummary.body)).scalar_one()
        forged = json.loads(raw)
        forged["basket_total"] = 1
        with SyncClient(t.server_url, t.credential) as c:
            answer = c.push_sales([forged])
        assert answer["results"] == [{"index": 0, "status": "conflict"}]
        assert [r.basket_total for r in central_sales(central)] == [600]
        with central.store.read() as conn:
            kinds = conn.execute(select(ReviewItem.kind, ReviewItem.detail)).all()
        assert [k for k, _ in kinds] == ["sale_conflict"] and '"basket_total":1' in kinds[0][1]

    def test_a_terminal_clock_far_ahead_is_flagged(
            self, central: Central, terminals: TerminalFactory) -> None:
        """A sale dated in the future (terminal's clock) is stored and flagged."""
        central.store.add_member("M1", "Ann", card_id="C1")
        t = terminals("S1")
        sync(t)
        ahead = utcnow() + timedelta(days=2)
        sell(TerminalService(t.local, DEFAULT_PROGRAM, clock=lambda: ahead), "T1")
        sync(t)
        assert [r.flags for r in central_sales(central)] == ["future"]

    def test_dry_run_replays_central_sales_net_of_refunds(
            self, central: Central, terminals: TerminalFactory, tmp_path: Any) -> None:
        """`admin program dry-run FILE --days N` replays the pushed baskets, net of the
        units refunded, per store when asked."""
        central.store.add_member("M1", "Ann", card_id="C1")
        t1, t2 = terminals("S1"), terminals("S2")
        now = utcnow()
        for t, n in ((t1, 3), (t2, 1)):
            sync(t)
            service = TerminalService(t.local, DEFAULT_PROGRAM, clock=lambda: now)
            for i in range(n):
                sell(service, f"T{i}")
            if t is t1:
                ask(service, {"type": "refund", "pos_id": "P1", "txn_id": "T0",
                              "refund_id": "R1", "lines": [{"sku": "BREAD", "qty": 1}]})
            sync(t)
        double = tmp_path / "double.toml"
        double.write_text('[program]\nname = "Double"\n[[rule]]\nid = "earn"\n'
                          'kind = "earn"\npoints = 2\nper = 100\n', encoding="utf-8")
        from pos_loyalty.server.cli import admin

        out = CliRunner().invoke(admin, ["program", "dry-run", str(double), "--days", "7",
                                         "--store", "S1", "--db", central.db_url])
        assert out.exit_code == 0, out.output
        # S1: 3 sales of 600, one refunded by 300 -> 1500 of baskets, 30 pts vs 15
        assert "over 3 sales" in out.output
        run = central.store.dry_run_program(double.read_text(), None, days=7)
        assert (run.candidate.sales, run.candidate.basket_total) == (4, 2100)
        assert (run.candidate.total.points, run.live.total.points) == (42, 21)
        old = central.store.dry_run_program(double.read_text(), None, days=7,
                                            store_id="S1")
        assert old.candidate.basket_total == 1500 and old.candidate.total.points == 30
        missing = CliRunner().invoke(admin, ["program", "dry-run", str(double),
                                             "--db", central.db_url])
        assert missing.exit_code == 2 and "--days" in missing.output


class TestBadBodies:
    @settings(max_examples=60, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(body=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
            st.sampled_from(["records", "kind", "pos_id", "txn_id", "lines", "sku", "qty",
                             "amount", "terminal_time", "basket_total", "refund_id",
                             "member_id", "x"]), inner, max_size=5), max_leaves=20))
    def test_any_json_gets_a_4xx_or_a_clean_answer(
            self, body: Any, sales_shop: tuple[str, str]) -> None:
        """Whatever JSON a terminal sends, central answers 2xx or 4xx, never 5xx."""
        url, credential = sales_shop
        r = httpx.post(f"{url}/v1/sales/push", content=json.dumps(body),
                       headers={"Authorization": f"Bearer {credential}",
                                "Content-Type": "application/json"}, timeout=30)
        assert r.status_code < 500, r.text
        if r.status_code >= 400:
            assert r.json()["reason"]

    @pytest.mark.parametrize("change, field", [
        ({"kind": "gift"}, "kind"),
        ({"basket_total": -1}, "basket_total"),
        ({"basket_total": "600"}, "basket_total"),
        ({"refund_id": "R1"}, "refund_id"),
        ({"lines": [{"sku": "", "qty": 1, "amount": 0}]}, "sku"),
        ({"lines": [{"sku": "A", "qty": 0, "amount": 0}]}, "qty"),
        ({"lines": [{"sku": "A\u0000", "qty": 1, "amount": 0}]}, "sku"),
        ({"lines": [{"sku": "A", "qty": 1, "amount": 1}] * 201}, "lines"),
        ({"terminal_time": "yesterday"}, "terminal_time"),
        ({"extra": 1}, "extra"),
    ])
    def test_bad_records_are_refused_naming_the_field(
            self, sales_shop: tuple[str, str], change: dict[str, Any], field: str) -> None:
        """A bad record gets a 422 naming the field, and nothing of the batch is stored."""
        url, credential = sales_shop
        good = {"kind": "sale", "pos_id": "P1", "txn_id": "T1",
                "terminal_time": "2026-11-02T09:00:00", "basket_total": 600, "lines": []}
        r = httpx.post(f"{url}/v1/sales/push", json={"records": [good, {**good, **change}]},
                       headers={"Authorization": f"Bearer {credential}"}, timeout=30)
        assert r.status_code == 422 and field in r.json()["reason"], r.text
        ok = httpx.post(f"{url}/v1/sales/push", json={"records": [good]},
                        headers={"Authorization": f"Bearer {credential}"}, timeout=30)
        assert ok.json()["stored"] + ok.json()["duplicates"] == 1

    def test_a_batch_central_refuses_stays_queued_and_the_round_goes_on(
            self, central: Central, shop: tuple[TerminalHandle, TerminalService]) -> None:
        """A summary central refuses is kept, reported, and does not stop the pull."""
        t, service = shop
        sell(service, "T1")
        with t.local.engine.begin() as conn:
            conn.execute(update(sale_outbox.SaleSummary).values(body='{"kind":"gift"}'))
        with SyncClient(t.server_url, t.credential) as c:
            report = run_sync(t.local, c)
        assert report.ok and report.sales_error and "kind" in report.sales_error
        assert report.pulled and unpushed_sales(t.local.engine) == 1

    def test_without_a_credential_nothing_is_read(self, central: Central) -> None:
        r = httpx.post(f"{central.url}/v1/sales/push", json={"records": []}, timeout=30)
        assert r.status_code == 401


@pytest.fixture
def sales_shop(central: Central, terminals: TerminalFactory) -> tuple[str, str]:
    t = terminals("S1")
    return central.url, t.credential
