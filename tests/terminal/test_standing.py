"""Standing discounts on member.identified: quoted once per tier, day and spend step."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from pos_loyalty.rules import parse_program
from pos_loyalty.store import LocalStore
from pos_loyalty.terminal.service import TerminalService

PROGRAM = '''
[program]
name = "Shop"
tiers = ["Silver", "Gold"]
[[rule]]
id = "gold"
kind = "discount"
label = "Gold 10%"
percent = 10
tiers = ["Gold"]
[[rule]]
id = "loyal"
kind = "progressive"
group = "loyal"
[[rule.scale]]
from = 100000
percent = 5
[[rule]]
id = "sat"
kind = "discount"
label = "Weekend 2%"
percent = 2
group = "weekend"
weekdays = ["sat"]
'''
SATURDAY = datetime(2026, 6, 13, 10, 0)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def service(tmp_path: Path) -> TerminalService:
    store = LocalStore(f"sqlite:///{tmp_path / 's.db'}")
    store.add_member("M-1", "Ada", card_id="C-1", tier="Gold")
    store.add_member("M-2", "Bob", card_id="C-2", tier="Gold")
    store.add_member("M-3", "Cy", card_id="C-3")
    return TerminalService(store, parse_program(PROGRAM), clock=Clock(SATURDAY))


def texts(service: TerminalService, card: str) -> list[str]:
    rec = service.store.find_by_card(card)
    assert rec is not None
    return service.standing_discounts(rec, service.shop_day(service.clock()))


class TestStandingDiscounts:
    """The tap shows the discounts of the member's tier and spend step on that day."""

    def test_tier_and_day_decide_the_lines(self, service: TerminalService) -> None:
        """Gold members see the Gold and weekend lines; others the weekend line only."""
        assert texts(service, "C-1") == ["Gold 10%: -10.00", "Weekend 2%: -1.80"]
        assert texts(service, "C-3") == ["Weekend 2%: -2.00"]

    def test_same_tier_is_quoted_once(self, service: TerminalService) -> None:
        """A second Gold member is served from the cache: one entry per tier, day and step."""
        texts(service, "C-1")
        texts(service, "C-2")
        texts(service, "C-3")
        assert len(service._standing) == 2

    def test_day_and_spend_step_are_part_of_the_key(self, service: TerminalService) -> None:
        """Monday drops the weekend line; reaching the spend step adds the progressive one."""
        assert isinstance(service.clock, Clock)
        service.clock.now = datetime(2026, 6, 15, 10, 0)
        assert texts(service, "C-3") == []
        with service.store.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE members SET lifetime_spend = 100000 "
                                 "WHERE member_id = 'M-3'")
        assert texts(service, "C-3") == ["5% loyalty discount: -5.00"]

    def test_new_program_clears_the_cache(self, service: TerminalService) -> None:
        """Loading another program forgets the lines quoted under the old one."""
        assert texts(service, "C-1")
        service.program = parse_program('[program]\nname = "Plain"\n')
        assert texts(service, "C-1") == []
