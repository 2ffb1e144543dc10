"""The fleet health page over real HTTP: each terminal's last heartbeat, stale ones
flagged, per store; a store manager sees only their stores."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import update

from pos_loyalty.server.terminals.queries import Heartbeat, TerminalAuth
from pos_loyalty.store.central_models import Terminal
from tests.conftest import Central
from tests.console.conftest import ConsoleClient, UserFactory

Clients = Callable[[], ConsoleClient]
PAGE = "/console/fleet"


def card(html: str, terminal_id: str) -> str:
    """The text of one terminal's card on the page."""
    part = html[html.index(f'id="terminal-{terminal_id}"'):]
    return part[:part.index("</li>")]


class TestFleet:
    def test_heartbeats_per_store_and_stale_flag(self, central: Central,
                                                 users: UserFactory,
                                                 client: Clients) -> None:
        """A terminal's heartbeat shows on its card (program, reader, till, outbox and its
        oldest event, last sync, clock offset, last error); one silent for an hour is
        flagged; the manager of S-A sees S-A's terminals only."""
        store = central.store
        a, code_a = store.add_terminal("S-A")
        store.enroll(code_a)
        quiet, code_q = store.add_terminal("S-A")
        store.enroll(code_q)
        b, code_b = store.add_terminal("S-B")
        store.enroll(code_b)
        now = store.clock()
        store.record_heartbeat(TerminalAuth(a, "S-A"), Heartbeat(
            software_version="0.9.1", program_name="Triple", program_version=4,
            reader_state="ok", till_state="down", outbox_depth=7,
            oldest_unsent_at=now - timedelta(minutes=3), last_sync_ok_at=now,
            clock_offset_ms=-420, last_error="serial: link down"))
        store.record_heartbeat(TerminalAuth(b, "S-B"), Heartbeat(program_name="Other"))
        with store.engine.begin() as conn:
            conn.execute(update(Terminal).where(Terminal.terminal_id == quiet).values(
                last_seen_at=now - timedelta(hours=1)))
        users("ada")
        users("mia", "manager", ("S-A",))
        c = client()
        c.sign_in("ada")
        page = c.http.get(PAGE).text
        assert "Terminals: 3. Not heard from for 5 minutes or more: 1." in page
        one = card(page, a)
        for text in ("0.9.1", "Triple v4", "<dd>ok</dd>", "<dd>down</dd>", "7 (oldest",
                     "-420", "serial: link down", "in contact"):
            assert text in one, text
        assert "not heard from" in card(page, quiet)
        assert page.index(f'id="terminal-{quiet}"') < page.index(f'id="terminal-{a}"')
        assert 'id="store-S-B"' in page and "Other" in card(page, b)
        m = client()
        m.sign_in("mia")
        mine = m.http.get(PAGE).text
        assert 'id="store-S-A"' in mine and 'id="store-S-B"' not in mine
        assert b not in mine and "Other" not in mine
        assert "Terminals: 2. Not heard from for 5 minutes or more: 1." in mine
