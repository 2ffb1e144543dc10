"""The cashier's line: chosen by documented rules, carried by member.identified over a pty."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pos_loyalty.demo import DemoRun
from pos_loyalty.nfc.sim.cards import member_card
from pos_loyalty.nfc.sim.emulator import TagEmulator
from pos_loyalty.pos.console import describe
from pos_loyalty.pos.pty import PtyBridge
from pos_loyalty.store.lookup import LineFacts
from pos_loyalty.terminal.hints import birthday_line, cashier_line, next_birthday


class TestBirthdayLine:
    def test_words(self) -> None:
        """Today, tomorrow, a weekday within the week, nothing further off."""
        monday = date(2026, 11, 30)
        assert birthday_line(date(1990, 11, 30), monday) == "birthday today"
        assert birthday_line(date(1990, 12, 1), monday) == "birthday tomorrow"
        assert birthday_line(date(1990, 12, 4), monday) == "birthday on Friday"
        assert birthday_line(date(1990, 12, 6), monday) == "birthday on Sunday"
        assert birthday_line(date(1990, 12, 7), monday) is None
        assert birthday_line(date(1990, 11, 29), monday) is None  # just past: a year off

    def test_leap_day_and_new_year(self) -> None:
        """29 February is kept on the 28th in a common year; late December looks across
        the new year."""
        assert next_birthday(date(2000, 2, 29), date(2027, 2, 1)) == date(2027, 2, 28)
        assert next_birthday(date(2000, 2, 29), date(2028, 2, 1)) == date(2028, 2, 29)
        assert birthday_line(date(1980, 1, 2), date(2026, 12, 30)) == "birthday on Saturday"

    @given(st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)),
           st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)))
    def test_next_birthday_is_within_a_year_on_the_day(self, born: date, today: date) -> None:
        """The next birthday is on or after today, within a year, on the member's day."""
        nxt = next_birthday(born, today)
        assert today <= nxt <= today + timedelta(days=366)
        if (born.month, born.day) != (2, 29):
            assert (nxt.month, nxt.day) == (born.month, born.day)
        line = birthday_line(born, today)
        assert (line is not None) == ((nxt - today).days <= 6)
        assert line is None or str(born.year) not in line  # never the year of birth

    def test_rules(self) -> None:
        """The birthday line wins when the birthday rule is on; else central's line; no
        row, no line."""
        today = date(2026, 11, 30)
        soon = date(1990, 12, 2)
        assert cashier_line(None, today) is None
        assert cashier_line(LineFacts("usually buys oat milk", True, soon), today) == \
            "birthday on Wednesday"
        assert cashier_line(LineFacts("usually buys oat milk", False, soon), today) == \
            "usually buys oat milk"
        assert cashier_line(LineFacts("", True, date(1990, 6, 1)), today) is None


@pytest.fixture
def run(tmp_path: Path) -> Iterator[DemoRun]:
    with TagEmulator() as rf, PtyBridge() as bridge:
        demo = DemoRun(lambda _line: None, tmp_path, rf, bridge)
        demo.start()
        try:
            yield demo
        finally:
            demo.close()


class TestOverThePty:
    def test_member_identified_carries_the_line_and_the_till_shows_it(
            self, run: DemoRun) -> None:
        """Pulled lines reach the till in member.identified over a real pty: central's
        line for Ada, the birthday line for Grace (birthday rule on, birthday in 3 days),
        nothing for a member without a row; the reference till prints the line."""
        service = run.daemon.service
        today = service.program.local(datetime.now(UTC)).date()
        soon = today + timedelta(days=3)
        store = run.daemon.store
        stamp = "2026-01-01"
        store.apply_pull("cashier_lines", ("member_id", "line", "birthday"),
                         [["M-1001", "welcome back: last visit in March", False],
                          ["M-1002", "usually buys oat milk", True]], f"1:{stamp}",
                         datetime(2026, 1, 1))
        with store.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE members SET birthday = ? WHERE member_id = ?",
                                 (soon.replace(year=2000).isoformat(), "M-1002"))
        ada = run.tap("C-1001", member_card("C-1001"))
        assert ada["hint"] == "welcome back: last visit in March"
        assert "> welcome back: last visit in March" in describe(ada)
        grace = run.tap("C-1002", member_card("C-1002"))
        expected = birthday_line(soon, service.program.local(datetime.now(UTC)).date())
        assert expected is not None and grace["hint"] == expected
        assert "phone" not in grace and "email" not in grace and "birthday" not in grace
        store.apply_pull("cashier_lines", ("member_id", "line", "birthday"),
                         [["M-1001", "", False]], f"2:{stamp}", datetime(2026, 1, 1))
        assert "hint" not in run.tap("C-1001", member_card("C-1001"))


class TestProtocolDoc:
    def test_section_6_6_frame_is_what_the_terminal_sends(self, tmp_path: Path) -> None:
        """The example frame of docs/pos-protocol.md 6.6 is a real terminal's answer to
        Ada's tap on Monday 30 November 2026, her birthday (4 December) on Friday."""
        from pos_loyalty.nfc.events import TapEvent
        from pos_loyalty.pos.codec import Frame, encode_frame
        from pos_loyalty.pos.messages import encode_message
        from pos_loyalty.store import LocalStore
        from pos_loyalty.terminal.demo_data import seed_demo_members
        from pos_loyalty.terminal.service import TerminalService

        store = LocalStore(f"sqlite:///{tmp_path / 'doc.db'}")
        try:
            seed_demo_members(store)
            store.apply_pull("cashier_lines", ("member_id", "line", "birthday"),
                             [["M-1001", "usually buys oat milk", True]], "1:a",
                             datetime(2026, 11, 30))
            with store.engine.begin() as conn:
                conn.exec_driver_sql("UPDATE members SET birthday = '2000-12-04' "
                                     "WHERE member_id = 'M-1001'")
            service = TerminalService(store, clock=lambda: datetime(2026, 11, 30, 9, 30))
            msg = service.on_tap(TapEvent("member", "04A1B2C3D4E5F6", "NTAG213",
                                          card_id="C-1001", verified=True))
        finally:
            store.close()
        wire = encode_frame(Frame("D", 0, encode_message(msg, "terminal")))
        line = "M->T  " + wire.decode().replace("\x02", "<STX>").replace("\x03", "<ETX>")
        doc = (Path(__file__).parents[2] / "docs" / "pos-protocol.md").read_text("utf-8")
        assert line in doc.splitlines()
