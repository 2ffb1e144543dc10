"""The terminal's service keeps the engine's promises: shop-local days, no expired points
spent, a credit's rest kept, the short display text in the till's quote message.

Runs the real TerminalService over a real SQLite store; the till's messages are the dicts
the protocol carries (the serial link itself is tested in tests/terminal)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from pos_loyalty.nfc.events import TapEvent
from pos_loyalty.rules import Credit, PointsLot, in_timezone, parse_program
from pos_loyalty.store import LocalStore
from pos_loyalty.terminal.service import TerminalService
from tests.tillsales import ask, seed_member_state, tap

PROGRAM = """
[program]
name = "Harbour Cafe"
[[rule]]
id = "base"
kind = "earn"
points = 1
per = 100
[[rule]]
id = "sat"
kind = "discount"
label = "Saturday 10%"
percent = 10
weekdays = ["sat"]
[[rule]]
id = "sorry"
kind = "credit"
label = "Our apologies"
[redemption]
points = 100
value = 100
[expiry]
mode = "rolling"
months = 12
"""


class Clock:
    """The service's clock: naive UTC, as the daemon's."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def service(tmp_path: Path) -> TerminalService:
    store = LocalStore(f"sqlite:///{tmp_path / 's.db'}")
    store.add_member("M-1", "Ada", card_id="C-1", balance=1000)
    view = store.member_view("M-1")
    assert view is not None
    seed_member_state(store, replace(view, lots=(PointsLot(date(2025, 3, 1), 600),
                                               PointsLot(date(2026, 2, 1), 400)),
                                   credits=(Credit("CR-1", 500, reason="late"),)))
    program = in_timezone(parse_program(PROGRAM), "Australia/Sydney")  # [terminal] timezone
    # 22:30 UTC on Friday 13 March 2026 is 09:30 on Saturday 14 March in Sydney
    svc = TerminalService(store, program, clock=Clock(datetime(2026, 3, 13, 22, 30)))
    told = tap(svc, TapEvent(kind="member", uid="04A1", tag_type="NTAG213", card_id="C-1",
                             verified=True))
    assert told["type"] == "member.identified"
    return svc


def basket(price: int) -> dict[str, Any]:
    return {"type": "basket.update", "pos_id": "POS-1", "txn_id": "T-1",
            "lines": [{"sku": "cake", "qty": 1, "unit_price": price, "category": "food"}]}


class TestAtTheTill:
    """What the cashier and the customer see, and what the store records."""

    def test_saturday_in_the_shop_not_in_utc(self, service: TerminalService) -> None:
        """Saturday morning in Sydney is Saturday at the till, though UTC says Friday; the
        member's standing discounts say so at the tap too."""
        rec = service.store.find_by_card("C-1")
        assert rec is not None
        assert service.standing_discounts(rec, service.shop_day(service.clock())) == [
            "Saturday 10%: -10.00"]
        q = ask(service, basket(2000))
        assert q["type"] == "quote"
        assert q["lines"][0]["text"] == "Saturday 10%: -2.00"

    def test_expired_points_never_spent_and_written_first(self, service: TerminalService
                                                          ) -> None:
        """600 of 1000 points passed their date on 1 March: the till can use 400, and the
        commit writes the expiry before the redemption."""
        ask(service, basket(5000))
        q = ask(service, {"type": "redeem.request", "pos_id": "POS-1", "txn_id": "T-1",
                                "points": 1000})
        assert q["type"] == "quote"
        assert [ln["value"] for ln in q["lines"] if ln["kind"] == "redeem"] == [400]
        done = ask(service, {"type": "txn.commit", "pos_id": "POS-1", "txn_id": "T-1"})
        assert done["type"] == "points.awarded", done
        kinds = [(e.kind, e.points) for e in service.store.ledger("M-1")]
        assert ("expire", -600) in kinds and ("redeem", -400) in kinds
        assert kinds.index(("expire", -600)) < kinds.index(("redeem", -400))
        # 50.00 - 5.00 (Saturday) - 5.00 (credit) - 4.00 (points) = 36.00 paid: +36 pts
        assert q["points_total"] == 36 and done["points"] == 36 - 400
        view = service.store.member_view("M-1")
        assert view is not None
        assert view.balance == 1000 - 600 - 400 + 36
        assert view.lots == (PointsLot(date(2026, 3, 14), 36),)  # the shop's day

    def test_credit_rest_kept_and_display_text(self, service: TerminalService) -> None:
        """A 5.00 credit on a 3.00 cake (2.70 after Saturday's 10%) leaves 2.30 for next
        time; the quote message carries the customer display's two short lines."""
        q = ask(service, basket(300))
        assert q["discount_total"] == 300 and q["total_due"] == 0
        assert q["display"] == ["+0 pts", "You save 3.00"]
        assert all(len(text) <= 20 for text in q["display"])
        ask(service, {"type": "txn.commit", "pos_id": "POS-1", "txn_id": "T-1"})
        view = service.store.member_view("M-1")
        assert view is not None and view.credits == (Credit("CR-1", 230, reason="late"),)

    def test_only_expired_points_cannot_be_redeemed(self, service: TerminalService) -> None:
        """When every point has passed its date the till's redemption is refused outright."""
        service.store.add_member("M-2", "Bob", card_id="C-2", balance=600)
        view = service.store.member_view("M-2")
        assert view is not None
        seed_member_state(service.store, replace(view, lots=(PointsLot(date(2025, 3, 1), 600),)))
        tap(service, TapEvent(kind="member", uid="04B2", tag_type="NTAG213", card_id="C-2",
                                verified=True))
        ask(service, basket(5000))
        reply = ask(service, {"type": "redeem.request", "pos_id": "POS-1",
                                    "txn_id": "T-1", "points": 500})
        assert reply["type"] == "error" and "balance is 0 pts" in reply["message"]


class TestTerminalTimezone:
    """`[terminal] timezone` in the terminal's config sets the shop's zone."""

    def test_read_and_checked(self, tmp_path: Path) -> None:
        """A known zone is kept; a misspelt one names the file, the line and the key."""
        from pos_loyalty.config import load_config
        from pos_loyalty.errors import ConfigError

        good = tmp_path / "terminal.toml"
        good.write_text('[terminal]\nid = "T-9"\ntimezone = "Australia/Sydney"\n')
        assert load_config(good).timezone == "Australia/Sydney"
        bad = tmp_path / "bad.toml"
        bad.write_text('[terminal]\nid = "T-9"\ntimezone = "Australia/Sidney"\n')
        with pytest.raises(ConfigError) as info:
            load_config(bad)
        assert (info.value.line, info.value.key) == (3, "terminal.timezone")
