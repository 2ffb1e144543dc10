"""`admin offers run` and `report offers` on a real central database (SQLite, PostgreSQL)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from click.testing import CliRunner, Result
from sqlalchemy import Connection, select, update

from pos_loyalty.server.central import CentralStore
from pos_loyalty.server.cli import admin, report
from pos_loyalty.store.central_models import AuditEntry, IssuedOffer, Member

PROGRAM = '''
[program]
name = "Treats"
[[rule]]
id = "bday"
kind = "coupon"
label = "Birthday treat"
code = "BDAY"
bound = "member"
amount = 300
'''

OFFERS = '''
[[offer]]
id = "birthday"
coupon = "BDAY"
valid_days = 31
max_members = {max}
cap = {{ times = 1, days = 300 }}
[offer.target]
birthday = "this month"
'''


def run(*args: str) -> Result:
    return CliRunner().invoke(admin, list(args))


def setup(url: str, tmp_path: Path, max_members: int = 10) -> Path:
    store = CentralStore(url)
    try:
        month = store.clock().month
        other = month % 12 + 1
        store.add_member("M-1", "Ann", card_id="C-1", birthday=date(1990, month, 3))
        store.add_member("M-2", "Bob", card_id="C-2", birthday=date(1985, other, 3))
        store.add_member("M-3", "Cy", card_id="C-3")
        store.add_member("M-4", "Di", card_id="C-4", birthday=date(1970, month, 28))
        store.write(lambda conn: conn.execute(
            update(Member).where(Member.member_id == "M-4").values(status="blocked")))
        store.publish_program(PROGRAM)
    finally:
        store.close()
    path = tmp_path / "offers.toml"
    path.write_text(OFFERS.format(max=max_members))
    return path


def issued(url: str) -> list[tuple[str, ...]]:
    store = CentralStore(url)
    try:
        with store.read() as conn:
            return [tuple(r) for r in conn.execute(select(
                IssuedOffer.offer_id, IssuedOffer.member_id, IssuedOffer.status)
                .order_by(IssuedOffer.member_id)).all()]
    finally:
        store.close()


class TestRun:
    def test_dry_run_then_run_then_capped(self, central_url: str, tmp_path: Path) -> None:
        """The dry run names who would get the offer and issues nothing; the run issues to
        exactly the matching active member and is audited; a second run is held back by
        the frequency cap; the report counts it."""
        path = setup(central_url, tmp_path)
        dry = run("offers", "run", str(path), "--dry-run", "--list", "--db", central_url)
        assert dry.exit_code == 0, dry.output
        assert "would issue" in dry.output and "birthday: M-1\n" in dry.output
        assert issued(central_url) == []
        done = run("offers", "run", str(path), "--db", central_url)
        assert done.exit_code == 0, done.output
        assert "1 coupons issued" in done.output
        assert issued(central_url) == [("birthday", "M-1", "live")]
        again = run("offers", "run", str(path), "--list", "--db", central_url)
        assert again.exit_code == 0, again.output
        assert "birthday: -" in again.output and "0 coupons issued" in again.output
        assert len(issued(central_url)) == 1
        store = CentralStore(central_url)
        try:
            with store.read() as conn:
                audits = conn.execute(select(AuditEntry.action, AuditEntry.after)).all()
        finally:
            store.close()
        assert [a.action for a in audits] == ["offers.run", "offers.run"]
        first = json.loads(audits[0].after)
        assert first["offers"][0]["issued"] == 1 and first["file"] == str(path)
        rep = CliRunner().invoke(report, ["offers", "--json", "--db", central_url])
        assert rep.exit_code == 0, rep.output
        assert [(f["offer_id"], f["issued"], f["used"], f["live"]) for f in
                json.loads(rep.output)] == [("birthday", 1, 0, 1)]

    def test_no_mass_blast(self, central_url: str, tmp_path: Path) -> None:
        """An offer matching more members than max_members issues to nobody, and says so."""
        path = setup(central_url, tmp_path, max_members=1)
        store = CentralStore(central_url)
        try:
            store.update_member("M-2", birthday=date(1985, store.clock().month, 9))
        finally:
            store.close()
        out = run("offers", "run", str(path), "--db", central_url)
        assert out.exit_code == 0, out.output
        assert "selects 2 members, more than max_members = 1" in out.output
        assert issued(central_url) == []

    def test_coupon_not_in_the_live_program(self, central_url: str, tmp_path: Path) -> None:
        """A coupon the live program does not redeem stops the run with the file's line."""
        path = setup(central_url, tmp_path)
        path.write_text(path.read_text().replace('"BDAY"', '"BDAY-X"'))
        out = run("offers", "run", str(path), "--db", central_url)
        assert out.exit_code == 1
        assert f"{path}:4: key 'offer[0].coupon'" in out.output
        assert "did you mean 'BDAY'" in out.output
        assert issued(central_url) == []


class TestPaidFigure:
    def test_paid_is_the_sales_that_used_the_offer(self, central_url: str) -> None:
        """What the offer's sales were paid, found by the sale's key even when the till's
        own id holds a "/" (the use names its sale "pos_id/txn_id"); a refund of the same
        sale and another terminal's sale of the same ids are not counted."""
        from datetime import timedelta

        from pos_loyalty.ids import uuid7
        from pos_loyalty.server.offers import queries
        from pos_loyalty.store.central_models import SaleRecord

        store = CentralStore(central_url)
        try:
            now = store.clock()
            store.add_member("M-1", "Ann")
            queries.issue(store, [queries.Issue("o", "M-1", "C", now + timedelta(days=9))] * 2,
                          run_id="r", actor="t", audit={})

            def sale(terminal: str, pos_id: str, txn_id: str, paid: int,
                     kind: str = "sale", refund_id: str = "") -> dict[str, object]:
                return {"sale_id": str(uuid7()), "terminal_id": terminal, "store_id": "S",
                        "kind": kind, "pos_id": pos_id, "txn_id": txn_id,
                        "refund_id": refund_id, "member_id": "M-1", "terminal_time": now,
                        "received_at": now, "basket_total": paid, "discount_total": 0,
                        "paid_total": paid, "points_earned": 0, "points_redeemed": 0,
                        "points": 0, "body_hash": "0" * 64}

            def tx(conn: Connection) -> None:
                conn.execute(store.insert(SaleRecord).values([
                    sale("T-1", "P/1", "A", 700), sale("T-1", "P", "2", 300),
                    sale("T-1", "P/1", "A", 999, kind="refund", refund_id="R"),
                    sale("T-2", "P", "2", 5000)]))
                ids = [r[0] for r in conn.execute(select(IssuedOffer.issue_id))]
                for issue_id, ref in zip(ids, ("P/1/A", "P/2"), strict=True):
                    conn.execute(update(IssuedOffer).where(IssuedOffer.issue_id == issue_id)
                                 .values(status="used", used_terminal="T-1", used_txn=ref))

            store.write(tx)
            got = queries.figures(store, now)
            assert [(f.offer_id, f.used, f.revenue) for f in got] == [("o", 2, 1000)]
        finally:
            store.close()
