"""Ledger push and delta pull: real terminals (SQLite), central on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import text, update

from pos_loyalty.rules import DEFAULT_PROGRAM
from pos_loyalty.server.central import utcnow
from pos_loyalty.store.local import LocalStore
from pos_loyalty.store.models import LedgerEvent
from pos_loyalty.sync.client import SyncClient, SyncReport, run_sync
from pos_loyalty.terminal.service import TerminalService
from tests.conftest import Central, TerminalFactory, TerminalHandle
from tests.tillsales import ring_up

NOW = datetime(2026, 3, 1, 12, 0)


def sync(t: TerminalHandle) -> SyncReport:
    with SyncClient(t.server_url, t.credential) as client:
        return run_sync(t.local, client)


def sell(local: LocalStore, n: int, *, card: str = "C1", points: int = 10,
         start: int = 0, now: datetime = NOW) -> None:
    """``n`` sales earning ``points`` each (1 pt per 1.00), made as the daemon makes them."""
    service = TerminalService(local, DEFAULT_PROGRAM, clock=lambda: now)
    for i in range(start, start + n):
        reply = ring_up(service, card_id=card, pos_id="POS-1", txn_id=f"T{i}",
                        total=100 * points)
        assert reply["type"] == "points.awarded" and reply["points"] == points, reply


def unack_all(local: LocalStore) -> None:
    """Forget every acknowledgement, as if central's answers had been lost."""
    with local.engine.begin() as conn:
        conn.execute(update(LedgerEvent).values(acked=False))


@pytest.fixture
def member(central: Central) -> str:
    central.store.add_member("M1", "Ann", card_id="C1", uid="04a1b2c3", tier="silver")
    central.store.adjust_points("M1", 100, "opening")
    return "M1"


class TestPush:
    def test_batch_pushed_twice_lands_once(self, central: Central, terminals: TerminalFactory,
                                           member: str) -> None:
        """Re-pushing an already stored batch changes neither the ledger nor the balance."""
        t = terminals()
        sync(t)
        sell(t.local, 30)
        first = sync(t)
        assert first.stored == 30 and first.duplicates == 0
        assert central.store.balance(member) == 100 + 300
        unack_all(t.local)
        second = sync(t)
        assert second.stored == 0 and second.duplicates == 30
        assert central.store.ledger_count(t.terminal_id) == 30
        assert central.store.balance(member) == 400 == central.store.ledger_sum(member)
        assert t.local.pending_count() == 0

    def test_balance_moves_only_for_inserted_rows(self, central: Central,
                                                  terminals: TerminalFactory,
                                                  member: str) -> None:
        """A batch mixing stored and new events adds only the new events' points."""
        t = terminals()
        sync(t)
        sell(t.local, 5)
        sync(t)
        unack_all(t.local)
        sell(t.local, 3, start=5, points=7)
        report = sync(t)
        assert report.stored == 3 and report.duplicates == 5
        assert central.store.balance(member) == 100 + 50 + 21
        assert report.acked_seq == 8

    def test_acked_sequence_stops_at_a_gap(self, central: Central,
                                           terminals: TerminalFactory, member: str) -> None:
        """Events after a missing sequence number are stored and the jump is flagged, but
        acked_seq stays below the gap until the missing event arrives."""
        t = terminals()
        events = [{"event_id": f"e{seq}", "terminal_id": t.terminal_id, "terminal_seq": seq,
                   "member_id": "M1", "kind": "earn", "points": 1, "txn_ref": "x",
                   "terminal_time": NOW.isoformat()} for seq in (1, 2, 4)]
        r = httpx.post(f"{t.server_url}/v1/ledger/push", json={"events": events},
                       headers={"Authorization": f"Bearer {t.credential}"})
        assert r.status_code == 200
        assert r.json()["acked_seq"] == 2
        assert [x["status"] for x in r.json()["results"]] == ["stored"] * 3
        assert [x["flags"] for x in r.json()["results"]] == ["", "", "seq_gap"]
        assert [i.kind for i in central.store.reconcile().review] == ["seq_gap"]
        events[2]["terminal_seq"] = 3
        events[2]["event_id"] = "e3"
        r = httpx.post(f"{t.server_url}/v1/ledger/push", json={"events": [events[2]]},
                       headers={"Authorization": f"Bearer {t.credential}"})
        assert r.json()["acked_seq"] == 3

    def test_refused_push_leaves_events_pending(self, central: Central,
                                                terminals: TerminalFactory, member: str) -> None:
        """When central refuses a push (revoked terminal) nothing is marked acked locally."""
        t = terminals()
        sync(t)
        sell(t.local, 4)
        central.store.revoke_terminal(t.terminal_id)
        with SyncClient(t.server_url, t.credential) as client, pytest.raises(Exception) as err:
            run_sync(t.local, client)
        assert "revoked" in str(err.value)
        assert t.local.pending_count() == 4
        assert central.store.ledger_count(t.terminal_id) == 0

    def test_far_future_event_is_flagged_and_reported(self, central: Central,
                                                      terminals: TerminalFactory,
                                                      member: str) -> None:
        """An event stamped beyond central's clock plus tolerance is stored and flagged."""
        t = terminals()
        sync(t)
        future = utcnow() + timedelta(days=3)
        sell(t.local, 1, points=5, start=900, now=future)
        report = sync(t)
        assert report.flagged == 1
        flagged = central.store.reconcile().flagged
        assert [f.flags for f in flagged] == ["future"]
        assert central.store.balance(member) == 105


class TestPull:
    def test_bootstrap_brings_every_entity(self, central: Central, terminals: TerminalFactory,
                                           member: str) -> None:
        """A new terminal gets members, cards, balances, tiers and its store's programs."""
        central.store.set_tier("gold", "Gold", '{"multiplier": 2}')
        for name, stores in (("Chain", ()), ("S1 points", ("S1",)), ("S2 points", ("S2",))):
            central.store.publish_program(f'[program]\nname = "{name}"\n', stores=stores)
        t = terminals("S1")
        seen: list[tuple[str, int, int]] = []
        with SyncClient(t.server_url, t.credential) as client:
            report = run_sync(t.local, client, progress=lambda e, d, n: seen.append((e, d, n)))
        assert report.pulled == {"members": 1, "cards": 1, "balances": 1, "tiers": 1,
                                 "programs": 2, "sun_counters": 0, "offers": 0,
                                 "cashier_lines": 0}
        rec = t.local.find_by_uid("04A1B2C3")
        assert rec is not None and rec.member_id == "M1" and rec.balance == 100
        assert rec.tier == "silver" and rec.card_status == "active"
        with t.local.engine.connect() as conn:
            programs = sorted(r[0] for r in conn.execute(text("SELECT program_id FROM programs")))
        assert programs == ["chain", "store:S1"]
        assert ("members", 1, 1) in seen

    def test_bootstrap_leaves_card_indexes_in_place(self, central: Central,
                                                   terminals: TerminalFactory,
                                                   member: str) -> None:
        """The indexes dropped for a first bootstrap are back after it, and after a crash."""
        from sqlalchemy import inspect

        def index_names(local: LocalStore) -> set[str]:
            with local.engine.connect() as conn:
                return {str(i["name"]) for i in inspect(conn).get_indexes("cards")}

        t = terminals()
        sync(t)
        assert {"ix_cards_uid", "ix_cards_member_id"} <= index_names(t.local)
        t.local.bulk_load_indexes(present=False)  # as if the process died mid-bootstrap
        assert "ix_cards_uid" not in index_names(t.local)
        sync(t)
        assert {"ix_cards_uid", "ix_cards_member_id"} <= index_names(t.local)

    def test_revoked_card_and_new_balance_reach_the_terminal(
            self, central: Central, terminals: TerminalFactory, member: str) -> None:
        """Changes after the bootstrap arrive on the next sync, and only they."""
        t = terminals()
        sync(t)
        central.store.set_card_status("C1", "revoked")
        central.store.adjust_points(member, 50, "goodwill")
        report = sync(t)
        assert report.pulled["cards"] == 1 and report.pulled["members"] == 0
        rec = t.local.find_by_card("C1")
        assert rec is not None and rec.card_status == "revoked" and rec.balance == 150
        assert sync(t).pulled == {e: 0 for e in report.pulled}

    def test_local_balance_is_central_plus_unacknowledged(
            self, central: Central, terminals: TerminalFactory, member: str) -> None:
        """A pulled balance keeps this terminal's not yet acknowledged sales on top."""
        t = terminals()
        sync(t)
        sell(t.local, 1, points=9, start=100)  # made after the push, before the pull
        after = t.local.pull_cursors()["balances"]
        t.local.apply_pull("balances", ("member_id", "balance"), [[member, 500]], after, NOW)
        rec = t.local.find_by_card("C1")
        assert rec is not None and rec.balance == 509
        sync(t)
        rec = t.local.find_by_card("C1")
        assert rec is not None and rec.balance == central.store.balance(member) == 109

    def test_paged_pull_survives_many_rows(self, central: Central,
                                           terminals: TerminalFactory) -> None:
        """More rows than one page arrive completely, cursor by cursor."""
        for i in range(57):
            central.store.add_member(f"P{i:03d}", f"n{i}", card_id=f"PC{i:03d}")
        t = terminals()
        with SyncClient(t.server_url, t.credential) as client:
            report = run_sync(t.local, client, page=10)
        assert report.pulled["members"] == 57 and report.pulled["cards"] == 57
        assert t.local.member_count() == 57


class TestPostgresCursor:
    @pytest.mark.parametrize("central_url", ["postgresql"], indirect=True)
    def test_rows_committed_out_of_order_are_not_skipped(
            self, central: Central, terminals: TerminalFactory) -> None:
        """A row whose transaction started first but committed last still reaches the terminal."""
        from sqlalchemy import create_engine

        t = terminals()
        sync(t)
        engine = create_engine(central.db_url)
        slow = engine.connect()
        try:
            slow.begin()
            slow.execute(text(
                "INSERT INTO members (member_id, display_name, status, change_xid) VALUES "
                "('SLOW', '', 'active', pg_current_xact_id()::text::bigint)"))
            central.store.add_member("FAST", "")  # later xid, committed first
            report = sync(t)
            assert report.pulled["members"] == 0
            slow.commit()
        finally:
            slow.close()
            engine.dispose()
        report = sync(t)
        assert report.pulled["members"] == 2
        with t.local.engine.connect() as conn:
            ids = {r[0] for r in conn.execute(text("SELECT member_id FROM members"))}
        assert {"SLOW", "FAST"} <= ids


class TestClock:
    def test_terminal_learns_central_clock_offset(self, central_url: str,
                                                  terminals: TerminalFactory) -> None:
        """With central's clock an hour ahead, the terminal's estimate lands near +1 h."""
        from pos_loyalty.server.app import create_app
        from pos_loyalty.server.central import CentralStore
        from pos_loyalty.server.config import Settings
        from pos_loyalty.server.runner import ServerThread

        terminals.central.store.add_member("M1", "Ann", card_id="C1")
        t = terminals()
        ahead = CentralStore(central_url, clock=lambda: utcnow() + timedelta(hours=1))
        app = create_app(Settings(db_url=central_url), store=ahead, migrate=False)
        with ServerThread(app) as srv, SyncClient(srv.url, t.credential) as client:
            report = run_sync(t.local, client)
            sell(t.local, 1)
            run_sync(t.local, client)
        ahead.close()
        assert report.clock_offset_ms is not None
        assert abs(report.clock_offset_ms - 3_600_000) < 5_000
        learnt = t.local.sync_identity().clock_offset_ms
        assert learnt is not None and abs(learnt - 3_600_000) < 5_000
        row = terminals.central.store.terminal_health(t.terminal_id)
        assert abs(row.clock_offset_ms - 3_600_000) < 5_000
