"""Central's SUN read counters over HTTP: strict input, only ever rising, pulled by terminals.

A live central server (uvicorn on loopback, SQLite and PostgreSQL) and enrolled terminals.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from pos_loyalty.errors import SyncError
from pos_loyalty.store.sun_counters import StoreCounters
from pos_loyalty.sync.client import SyncClient, run_sync
from tests.conftest import Central, TerminalFactory

UID = "04A0B1C2D3E4F5"


def post(central: Central, credential: str | None, body: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {credential}"} if credential else {}
    return httpx.post(f"{central.url}/v1/sun/counters", json=body, headers=headers)


class TestPushCounters:
    @pytest.mark.parametrize("entry", [
        {"uid": UID, "counter": "5"},                 # a string is not a number
        {"uid": UID, "counter": True},                # nor is a boolean
        {"uid": UID.lower(), "counter": 5},           # UIDs are upper-case hex
        {"uid": "04A0B1C2", "counter": 5},            # NTAG 424 DNA UIDs are 7 bytes
        {"uid": UID, "counter": 0x1000000},           # the counter has 3 bytes
        {"uid": UID, "counter": -1},
        {"uid": UID, "counter": 5, "extra": 1},
    ])
    def test_bad_entries_are_422(self, central: Central, terminals: TerminalFactory,
                                 entry: dict[str, Any]) -> None:
        """Anything but a 7-byte upper-case UID and a 3-byte integer counter is refused."""
        t = terminals()
        resp = post(central, t.credential, {"counters": [entry]})
        assert resp.status_code == 422, resp.text

    def test_too_many_and_no_credential(self, central: Central,
                                        terminals: TerminalFactory) -> None:
        """Over 1,000 counters is 422; without a credential nothing is read (401)."""
        t = terminals()
        many = [{"uid": f"04{i:012X}", "counter": 1} for i in range(1001)]
        assert post(central, t.credential, {"counters": many}).status_code == 422
        assert post(central, None, {"counters": []}).status_code == 401
        assert post(central, "T-9.nope", {"counters": []}).status_code == 401

    def test_counter_only_rises_and_is_pulled(self, central: Central,
                                              terminals: TerminalFactory) -> None:
        """A lower report changes nothing; every terminal pulls the highest counter."""
        a, b = terminals(name="a"), terminals(name="b")
        with SyncClient(a.server_url, a.credential) as client:
            assert client.push_sun_counters([(UID, 10), ("04000000000001", 3)])["raised"] == 2
            assert client.push_sun_counters([(UID, 7)])["raised"] == 0
            assert client.push_sun_counters([(UID, 11)])["raised"] == 1
        with SyncClient(b.server_url, b.credential) as client:
            report = run_sync(b.local, client)
            assert report.pulled["sun_counters"] == 2
            assert run_sync(b.local, client).pulled["sun_counters"] == 0  # nothing new
        counters = StoreCounters(b.local.url)
        try:
            assert counters.last_counter(bytes.fromhex(UID)) == 11
        finally:
            counters.close()

    def test_sync_round_pushes_local_counters_once(self, central: Central,
                                                   terminals: TerminalFactory) -> None:
        """A counter accepted at a terminal reaches central in the next round, then rests."""
        a = terminals(name="a")
        counters = StoreCounters(a.local.url)
        try:
            counters.record(bytes.fromhex(UID), 42)
        finally:
            counters.close()
        with SyncClient(a.server_url, a.credential) as client:
            run_sync(a.local, client)
            with a.local.engine.connect() as conn:
                pending = conn.exec_driver_sql(
                    "SELECT COUNT(*) FROM sun_counters WHERE pushed = 0").scalar_one()
            assert pending == 0
            page = client.pull("sun_counters", "", client.horizon()["until"], 10)
        assert page["rows"] == [[UID, 42]]

    def test_refused_push_fails_the_round(self, central: Central,
                                          terminals: TerminalFactory) -> None:
        """A revoked terminal's counters are refused and stay queued for a later round."""
        a = terminals(name="a")
        counters = StoreCounters(a.local.url)
        try:
            counters.record(bytes.fromhex(UID), 5)
        finally:
            counters.close()
        central.store.revoke_terminal(a.terminal_id)
        with SyncClient(a.server_url, a.credential) as client, pytest.raises(SyncError):
            run_sync(a.local, client)
        with a.local.engine.connect() as conn:
            assert conn.exec_driver_sql(
                "SELECT pushed FROM sun_counters").scalar_one() == 0
