"""Done when: an offer issued to a segment is applied at the member's next tap at a terminal.

Over a live central: a terminal sells to two members on days long past (its clock set back),
its sync pushes those sales to central; Ann's four weekly visits ending 170 days ago make
her a lapsed regular, Bob's single visit does not. The offers run issues the win-back
coupon to Ann only; the terminal syncs; at Ann's next tap the quote shows the coupon and the
till shows the cashier's line central chose from her history; Bob's quote shows nothing.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from pos_loyalty.rules.parse import parse_text
from pos_loyalty.server.cli import admin, report
from pos_loyalty.server.offers import queries
from pos_loyalty.terminal.service import TerminalService
from tests.conftest import Central, TerminalFactory
from tests.offers.offer_helpers import member_coupon_program, sync
from tests.tillsales import ask, member_tap, tap

PROGRAM = member_coupon_program("Win-back", '''
label = "Welcome back"
code = "WELCOME-BACK-5"
amount = 500''')

OFFERS = '''
[cashier]
usually_buys = false

[[offer]]
id = "winback"
coupon = "WELCOME-BACK-5"
valid_days = 30
[offer.target]
segment = "lapsed regular"
'''



def sale(service: TerminalService, card: str, txn_id: str) -> dict[str, Any]:
    told = tap(service, member_tap(card))
    assert told["type"] == "member.identified", told
    quote = ask(service, {"type": "basket.update", "pos_id": "P", "txn_id": txn_id,
                          "lines": [{"sku": "OAT-1L", "qty": 1, "unit_price": 2000,
                                     "category": "oat-milk"}]})
    assert quote["type"] == "quote", quote
    return {"tap": told, "quote": quote}


class TestSegmentOffer:
    def test_lapsed_regular_gets_the_coupon_at_the_next_tap(
            self, central: Central, terminals: TerminalFactory, tmp_path: Path) -> None:
        central.store.add_member("M-1", "Ann", card_id="C-1")
        central.store.add_member("M-2", "Bob", card_id="C-2")
        central.store.publish_program(PROGRAM)
        t = terminals("S1")
        assert sync(t).problems == []
        program = parse_text(PROGRAM)
        now = central.store.clock()
        clock = [now]
        past = TerminalService(t.local, program, clock=lambda: clock[0])
        for n, days_ago in enumerate((191, 184, 177, 170)):
            clock[0] = now - timedelta(days=days_ago)
            sale(past, "C-1", f"A{n}")
            assert ask(past, {"type": "txn.commit", "pos_id": "P", "txn_id": f"A{n}"})[
                "type"] == "points.awarded"
        clock[0] = now - timedelta(days=150)
        sale(past, "C-2", "B0")
        ask(past, {"type": "txn.commit", "pos_id": "P", "txn_id": "B0"})
        assert sync(t).problems == []  # the sales reach central

        offers = tmp_path / "offers.toml"
        offers.write_text(OFFERS)
        runner = CliRunner()
        dry = runner.invoke(admin, ["offers", "run", str(offers), "--dry-run", "--list",
                                    "--db", central.db_url])
        assert dry.exit_code == 0, dry.output
        assert "winback: M-1\n" in dry.output
        done = runner.invoke(admin, ["offers", "run", str(offers), "--db", central.db_url])
        assert done.exit_code == 0 and "1 coupons issued" in done.output, done.output
        lines = runner.invoke(admin, ["offers", "lines", str(offers), "--db", central.db_url])
        assert lines.exit_code == 0, lines.output
        assert sync(t).problems == []

        till = TerminalService(t.local, program)
        ann = sale(till, "C-1", "A9")
        month = (now - timedelta(days=170)).strftime("%B")
        year = "" if (now - timedelta(days=170)).year == now.year else \
            f" {(now - timedelta(days=170)).year}"
        assert ann["tap"]["hint"] == f"welcome back: last visit in {month}{year}"
        coupon = [ln for ln in ann["quote"]["lines"] if ln["kind"] == "discount"]
        assert [ln["text"] for ln in coupon] == ["Welcome back: -5.00"]
        assert ann["quote"]["total_due"] == 1500
        assert ask(till, {"type": "txn.commit", "pos_id": "P", "txn_id": "A9"})["type"] == \
            "points.awarded"
        bob = sale(till, "C-2", "B9")
        assert bob["quote"]["discount_total"] == 0
        assert sync(t).problems == []
        figures = queries.figures(central.store, central.store.clock())
        assert [(f.offer_id, f.issued, f.used, f.discount, f.revenue) for f in figures] == \
            [("winback", 1, 1, 500, 1500)]
        out = runner.invoke(report, ["offers", "--db", central.db_url])
        assert out.exit_code == 0, out.output
        assert out.output.splitlines()[1].split() == \
            ["winback", "1", "1", "100.0%", "0", "0", "5.00", "5.00", "15.00", "0"]
        assert sale(till, "C-1", "A10")["quote"]["discount_total"] == 0  # used once
