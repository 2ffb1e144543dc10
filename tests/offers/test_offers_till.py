"""Member-bound offers from central to the till, over a live central and real sync."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from click.testing import CliRunner
from sqlalchemy import select

from pos_loyalty.rules.parse import parse_text
from pos_loyalty.server.offers import queries
from pos_loyalty.store.central_models import IssuedOffer
from pos_loyalty.sync.client import SyncClient
from pos_loyalty.terminal.service import TerminalService
from tests.conftest import Central, TerminalFactory, TerminalHandle
from tests.offers.offer_helpers import member_coupon_program, sync
from tests.tillsales import ask, member_tap, tap

PROGRAM = member_coupon_program("Offers", '''
label = "We missed you"
code = "WINBACK-10"
percent = 10''')


def sell(service: TerminalService, txn_id: str, total: int = 5000) -> dict[str, Any]:
    """Tap C-1, a basket of ``total``; returns the quote, the sale left open."""
    assert tap(service, member_tap("C-1"))["type"] == "member.identified"
    return ask(service, {"type": "basket.update", "pos_id": "P", "txn_id": txn_id,
                         "lines": [{"sku": "A", "qty": 1, "unit_price": total,
                                    "category": "misc"}]})


def commit(service: TerminalService, txn_id: str) -> dict[str, Any]:
    return ask(service, {"type": "txn.commit", "pos_id": "P", "txn_id": txn_id})


def issue(central: Central, member_id: str = "M-1", days: int = 30) -> None:
    now = central.store.clock()
    queries.issue(central.store, [queries.Issue("winback", member_id, "WINBACK-10",
                                                now + timedelta(days=days))],
                  run_id="run-1", actor="test", audit={"offers": 1})


def offer_row(central: Central) -> Any:
    with central.store.read() as conn:
        return conn.execute(select(IssuedOffer)).one()


class TestOfferAtTheTill:
    def test_issued_pulled_applied_at_next_tap_used_once(
            self, central: Central, terminals: TerminalFactory) -> None:
        """An offer issued at central reaches the terminal by sync, shows on the member's
        next quote, is used by that sale, reaches central as used with its discount, and is
        gone from the member's next quote."""
        program = parse_text(PROGRAM)
        central.store.add_member("M-1", "Ann", card_id="C-1")
        t = terminals("S1")
        sync(t)
        service = TerminalService(t.local, program)
        before = sell(service, "T0")
        assert before["discount_total"] == 0  # nothing issued yet
        assert commit(service, "T0")["type"] == "points.awarded"
        issue(central)
        sync(t)
        quote = sell(service, "T1")
        assert quote["discount_total"] == 500
        assert [ln["text"] for ln in quote["lines"] if ln["kind"] == "discount"] == \
            ["We missed you: -5.00"]
        assert commit(service, "T1")["type"] == "points.awarded"
        assert t.local.member_view("M-1") is not None
        assert t.local.member_view("M-1").coupons == {}  # type: ignore[union-attr]
        report = sync(t)
        assert report.problems == []
        row = offer_row(central)
        assert (row.status, row.used_terminal, row.used_txn, row.discount) == \
            ("used", t.terminal_id, "P/T1", 500)
        again = sell(service, "T2")
        assert again["discount_total"] == 0
        sync(t)  # the pull of the used row changes nothing here
        assert sell(service, "T3")["discount_total"] == 0

    def test_expired_offer_is_not_applied(self, central: Central,
                                          terminals: TerminalFactory) -> None:
        """An offer whose end has passed is not merged, even before central marks it."""
        central.store.add_member("M-1", "Ann", card_id="C-1")
        t = terminals("S1")
        issue(central, days=30)
        sync(t)
        clock = [central.store.clock() + timedelta(days=31)]
        service = TerminalService(t.local, parse_text(PROGRAM), clock=lambda: clock[0])
        assert sell(service, "T1")["discount_total"] == 0
        assert queries.expire(central.store, clock[0]) == 1
        sync(t)
        clock[0] = central.store.clock()
        assert sell(service, "T2")["discount_total"] == 0


class TestTwoTillsOffline:
    def test_second_use_is_reviewed_not_doubled(self, central: Central,
                                                terminals: TerminalFactory) -> None:
        """Two terminals hold the same live offer and both sell with it before either
        syncs: central counts the first use, keeps the second as a review item that
        `report reconcile` lists, and a repeated push changes nothing."""
        program = parse_text(PROGRAM)
        central.store.add_member("M-1", "Ann", card_id="C-1")
        issue(central)
        a, b = terminals("S1"), terminals("S2")
        sync(a)
        sync(b)
        till_a, till_b = TerminalService(a.local, program), TerminalService(b.local, program)
        assert sell(till_a, "A1")["discount_total"] == 500
        assert sell(till_b, "B1", total=3000)["discount_total"] == 300
        assert commit(till_a, "A1")["type"] == commit(till_b, "B1")["type"] == \
            "points.awarded"
        assert sync(a).problems == []
        report = sync(b)
        assert [p.split(": ")[1] for p in report.problems] == ["conflict"]
        row = offer_row(central)
        assert (row.used_terminal, row.used_txn, row.discount) == (a.terminal_id, "P/A1", 500)
        figures = queries.figures(central.store, central.store.clock())
        assert [(f.offer_id, f.issued, f.used, f.discount, f.reuses) for f in figures] == \
            [("winback", 1, 1, 500, 1)]
        from pos_loyalty.server.cli import report as report_cmd

        out = CliRunner().invoke(report_cmd, ["reconcile", "--db", central.db_url])
        assert out.exit_code == 0, out.output
        assert "offer_reuse" in out.output and b.terminal_id in out.output
        # the same uses pushed again (an answer lost): nothing new
        with SyncClient(b.server_url, b.credential) as client:
            again = client.push_offer_uses([
                queries_use for queries_use in _uses(b)])
        assert again["results"] == ["conflict"]
        assert queries.figures(central.store, central.store.clock())[0].reuses == 1


def _uses(t: TerminalHandle) -> list[Any]:
    from pos_loyalty.store import offers

    with t.local.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE member_offers SET pushed = 0 WHERE status = 'used'")
    return offers.unpushed_uses(t.local.engine)


class TestUsesEndpoint:
    def test_bad_requests_get_4xx_and_change_nothing(self, central: Central,
                                                    terminals: TerminalFactory) -> None:
        """No credential: 401; a malformed body: 422 naming the field; an unknown offer is
        answered ``unknown``; none of it touches an issued offer."""
        import httpx

        central.store.add_member("M-1", "Ann", card_id="C-1")
        issue(central)
        t = terminals("S1")
        url = central.url + "/v1/offers/uses"
        use = {"issue_id": "nope", "txn_ref": "P/T1", "used_at": "2026-11-30T10:00:00Z",
               "discount": 100}
        assert httpx.post(url, json={"uses": [use]}).status_code == 401
        auth = {"Authorization": f"Bearer {t.credential}"}
        for bad in ({"uses": [{**use, "discount": -1}]}, {"uses": [{**use, "extra": 1}]},
                    {"uses": "x"}, {"uses": [{**use, "used_at": "yesterday"}]},
                    {"uses": [use] * 501}):
            r = httpx.post(url, json=bad, headers=auth)
            assert r.status_code == 422, (bad, r.text)
            assert r.json()["reason"]
        r = httpx.post(url, json={"uses": [use]}, headers=auth)
        assert r.status_code == 200 and r.json()["results"] == ["unknown"]
        assert offer_row(central).status == "live"

    def test_a_refused_batch_stays_queued_and_never_stops_the_round(
            self, central: Central, terminals: TerminalFactory) -> None:
        """Central refusing the offer uses (422) is reported, the uses stay queued, and the
        ledger push and the pull of the round still happen."""
        from pos_loyalty.store import offers

        program = parse_text(PROGRAM)
        central.store.add_member("M-1", "Ann", card_id="C-1")
        issue(central)
        t = terminals("S1")
        sync(t)
        till = TerminalService(t.local, program)
        assert sell(till, "T1")["discount_total"] == 500
        assert commit(till, "T1")["type"] == "points.awarded"
        with t.local.engine.begin() as conn:  # a use central cannot accept
            conn.exec_driver_sql("UPDATE member_offers SET discount = -1")
        central.store.add_member("M-2", "Bob", card_id="C-2")
        report = sync(t)
        assert report.pending_after == 0 and report.pulled["members"] == 1
        assert [p.split(":")[0] for p in report.problems] == ["offer uses not pushed"]
        assert "422" in report.problems[0]
        assert [u.issue_id for u in offers.unpushed_uses(t.local.engine)] != []
        assert offer_row(central).status == "live"
