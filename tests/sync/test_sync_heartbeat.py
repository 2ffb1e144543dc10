"""Fleet health: a terminal's heartbeat over real HTTP, and last contact on any request."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from pos_loyalty import __version__
from pos_loyalty.rules import DEFAULT_PROGRAM
from pos_loyalty.sync.worker import SyncWorker
from pos_loyalty.terminal.service import TerminalService
from tests.conftest import Central, TerminalFactory
from tests.tillsales import ring_up


class TestHeartbeat:
    def test_worker_reports_state_with_every_round(self, central: Central,
                                                   terminals: TerminalFactory) -> None:
        """After a round central knows the version, program, reader, till, outbox and
        counts the terminal reported; a failed push shows as the last error."""
        central.store.add_member("M1", "Ann", card_id="C1")
        t = terminals()
        state = {"program_name": "Points", "program_version": 3, "reader_state": "ok",
                 "till_state": "up"}
        worker = SyncWorker(t.local, t.server_url, t.credential, interval_s=60,
                            status=lambda: state)
        try:
            assert worker.sync_once().ok
            service = TerminalService(t.local, DEFAULT_PROGRAM)
            sale = ring_up(service, card_id="C1", pos_id="P", txn_id="T1", total=500)
            assert sale["type"] == "points.awarded"
            health = central.store.terminal_health(t.terminal_id)
            assert health.outbox_depth == 0 and health.software_version == __version__
            assert (health.program_name, health.program_version, health.reader_state,
                    health.till_state) == ("Points", 3, "ok", "up")
            assert health.last_sync_ok_at is not None and not health.stale
            state["reader_state"] = "absent"
            central.store.revoke_terminal(t.terminal_id)
            assert not worker.sync_once().ok  # refused: the heartbeat is refused too
            assert central.store.terminal_health(t.terminal_id).reader_state == "ok"
        finally:
            worker.stop()

    def test_outbox_depth_and_oldest_unsent_when_push_is_refused(
            self, central: Central, terminals: TerminalFactory) -> None:
        """Events central has not taken are counted, with the oldest one's time."""
        central.store.add_member("M1", "Ann", card_id="C1")
        t = terminals()
        worker = SyncWorker(t.local, t.server_url, t.credential, interval_s=60)
        try:
            worker.sync_once()
            service = TerminalService(t.local, DEFAULT_PROGRAM)
            for i in range(3):
                ring_up(service, card_id="C1", pos_id="P", txn_id=f"T{i}", total=100)
            from pos_loyalty.sync.client import SyncReport, heartbeat_body

            body = heartbeat_body(t.local, SyncReport(ok=False, error="central down"), None)
            r = httpx.post(f"{t.server_url}/v1/terminal/heartbeat", json=body,
                           headers={"Authorization": f"Bearer {t.credential}"})
            assert r.status_code == 200, r.text
            h = central.store.terminal_health(t.terminal_id)
            assert h.outbox_depth == 3 and h.oldest_unsent_at is not None
            assert h.last_error == "central down"
        finally:
            worker.stop()

    def test_bad_heartbeat_is_a_422_and_control_bytes_are_escaped(
            self, central: Central, terminals: TerminalFactory) -> None:
        """A negative depth or unknown field is refused; an error text is kept printable."""
        t = terminals()
        auth = {"Authorization": f"Bearer {t.credential}"}
        url = f"{t.server_url}/v1/terminal/heartbeat"
        assert httpx.post(url, json={"outbox_depth": -1}, headers=auth).status_code == 422
        assert httpx.post(url, json={"nope": 1}, headers=auth).status_code == 422
        assert httpx.post(url, json={}).status_code == 401
        ok = httpx.post(url, json={"last_error": "bad\x1b[31m\nline"}, headers=auth)
        assert ok.status_code == 200
        assert "\x1b" not in central.store.terminal_health(t.terminal_id).last_error


@pytest.mark.parametrize("central_url", ["sqlite"], indirect=True)
def test_seen_moves_on_any_contact(central: Central, terminals: TerminalFactory) -> None:
    """A terminal that only pulls (no events to push) still moves its last contact."""
    t = terminals()
    before = central.store.terminal_health(t.terminal_id).last_seen_at
    assert before is None
    r = httpx.get(f"{t.server_url}/v1/sync/horizon",
                  headers={"Authorization": f"Bearer {t.credential}"})
    assert r.status_code == 200
    seen = central.store.terminal_health(t.terminal_id).last_seen_at
    assert seen is not None and central.store.clock() - seen < timedelta(seconds=5)
