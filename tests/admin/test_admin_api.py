"""The JSON admin API over real HTTP: the token, members, points, programs, terminals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pos_loyalty.server.app import create_app
from pos_loyalty.server.central import CentralStore
from pos_loyalty.server.config import Settings
from pos_loyalty.server.console.accounts import Principal
from pos_loyalty.server.runner import ServerThread

TOKEN = "t" * 40
PROGRAM = '[program]\nname = "P"\n\n[[rule]]\nid = "base"\nkind = "earn"\nlabel = "Base"\n' \
          'points = {n}\nper = 100\n'


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[httpx.Client, CentralStore]]:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    app = create_app(Settings(db_url=url, admin_token=TOKEN))
    store: CentralStore = app.state.store
    with ServerThread(app) as srv, httpx.Client(
            base_url=srv.url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield client, store
    assert store.integrity() == []


class TestAdminApi:
    def test_token_is_required_and_off_without_one(self, api: tuple[httpx.Client, CentralStore],
                                                   tmp_path: Path) -> None:
        """No token, a wrong one: 401; a server without a configured token: 403."""
        client, _ = api
        assert httpx.get(f"{client.base_url}/v1/admin/members").status_code == 401
        wrong = httpx.get(f"{client.base_url}/v1/admin/members",
                          headers={"Authorization": "Bearer " + "x" * 40})
        assert wrong.status_code == 401
        off = create_app(Settings(db_url=f"sqlite:///{tmp_path / 'o.db'}"))
        with ServerThread(off) as srv:
            r = httpx.get(f"{srv.url}/v1/admin/members",
                          headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 403 and "POS_LOYALTY_ADMIN_TOKEN" in r.json()["reason"]

    def test_changes_made_with_the_token_are_audited(self, tmp_path: Path) -> None:
        """Each change the admin token makes is one audit row under ``admin-token``; reads
        and refused changes write none."""
        app = create_app(Settings(db_url=f"sqlite:///{tmp_path / 'a.db'}", admin_token=TOKEN))
        with ServerThread(app) as srv, httpx.Client(
                base_url=srv.url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            assert client.post("/v1/admin/members", json={"member_id": "M-1"}).status_code == 201
            assert client.post("/v1/admin/members", json={"member_id": "M-1"}).status_code == 409
            assert client.get("/v1/admin/members").status_code == 200
            assert client.patch("/v1/admin/members/M-1",
                                json={"tier": "gold"}).status_code == 200
        rows = app.state.console.accounts.audit_log(Principal("x", "", "admin"))
        assert [(r.actor, r.action, r.target) for r in reversed(rows)] == [
            ("admin-token", "api POST /v1/admin/members", "/v1/admin/members"),
            ("admin-token", "api PATCH /v1/admin/members/{member_id}", "/v1/admin/members/M-1")]
        app.state.store.close()

    def test_members_round_trip_with_4xx_for_bad_requests(
            self, api: tuple[httpx.Client, CentralStore]) -> None:
        """Create, patch one field, adjust points, search; taken ids 409, unknown 404."""
        client, store = api
        r = client.post("/v1/admin/members", json={"member_id": "M-1", "display_name": "Ann",
                                                   "tier": "silver", "card_id": "C-1"})
        assert r.status_code == 201, r.text
        assert client.post("/v1/admin/members", json={"member_id": "M-1"}).status_code == 409
        assert client.post("/v1/admin/members", json={"member_id": ""}).status_code == 422
        r = client.patch("/v1/admin/members/M-1", json={"tier": "gold"})
        assert r.status_code == 200 and r.json()["display_name"] == "Ann"
        assert r.json()["tier"] == "gold"
        assert client.patch("/v1/admin/members/M-9", json={"tier": "x"}).status_code == 404
        r = client.post("/v1/admin/members/M-1/points", json={"points": 15,
                                                              "reason": "goodwill"})
        assert r.status_code == 201 and r.json()["balance"] == 15
        r = client.post("/v1/admin/members/M-1/points", json={"points": -99, "reason": "x"})
        assert r.status_code == 409 and "has 15 points" in r.json()["reason"]
        found = client.get("/v1/admin/members", params={"q": "an"}).json()["members"]
        assert [m["member_id"] for m in found] == ["M-1"]
        r = client.post("/v1/admin/cards/C-1/block", json={"replace_with": "C-2"})
        assert r.status_code == 200 and r.json()["member_id"] == "M-1"
        assert store.get_member("M-1").balance == 15

    def test_programs_publish_diff_rollback(self,
                                            api: tuple[httpx.Client, CentralStore]) -> None:
        """A bad file is a 422 with its line; publish, diff and rollback answer JSON."""
        client, _ = api
        bad = client.post("/v1/admin/programs", json={"body": PROGRAM.format(n='"x"')})
        assert bad.status_code == 422 and "body:8" in bad.json()["reason"]
        for n in (1, 2):
            r = client.post("/v1/admin/programs", json={"body": PROGRAM.format(n=n)})
            assert r.status_code == 201 and r.json()["live"]
        diff = client.get("/v1/admin/programs/diff", params={"old": 1, "new": 2}).json()
        assert diff["changes"] == ["earn rate 1 -> 2 pts per 1.00"]
        r = client.post("/v1/admin/programs/1/rollback", json={})
        assert r.status_code == 201 and r.json()["copied_from"] == 1
        assert client.get("/v1/admin/programs/99").status_code == 404
        assert len(client.get("/v1/admin/programs").json()["versions"]) == 3

    def test_terminals_list(self, api: tuple[httpx.Client, CentralStore]) -> None:
        """Terminals come back with their health fields and stale flag."""
        client, store = api
        store.add_terminal("S1", terminal_id="T-1")
        [t] = client.get("/v1/admin/terminals").json()["terminals"]
        assert t["terminal_id"] == "T-1" and t["status"] == "pending" and not t["stale"]
        assert client.get("/v1/admin/terminals/T-9").status_code == 404


class TestSearchOnBothDatabases:
    def test_prefix_search_and_its_indexes(self, central_url: str) -> None:
        """Search finds by id, card and name prefix on SQLite and PostgreSQL alike, and on
        PostgreSQL each part is served by its byte-order index."""
        from sqlalchemy import text

        from pos_loyalty.migrations import upgrade_central

        upgrade_central(central_url)
        store = CentralStore(central_url)
        try:
            for i, name in enumerate(("Dana Cohen", "dan levi", "Éli Dan", "Zoë")):
                store.add_member(f"M-{i}", name, card_id=f"CARD-{i}")
            assert [r.member_id for r in store.search_members("DAN")] == ["M-0", "M-1"]
            assert [r.member_id for r in store.search_members("éli")] == ["M-2"]
            assert [r.member_id for r in store.search_members("CARD-3")] == ["M-3"]
            assert [r.member_id for r in store.search_members("M-")] == \
                ["M-0", "M-1", "M-2", "M-3"]
            assert store.search_members("M-9") == []
            if store.is_pg:
                with store.engine.connect() as conn:
                    conn.execute(text("SET enable_seqscan = off"))
                    for sql, index in (
                            ("SELECT member_id FROM members WHERE name_key COLLATE \"C\" "
                             ">= 'dan' ORDER BY name_key COLLATE \"C\" LIMIT 5",
                             "ix_members_name_key_c"),
                            ("SELECT member_id FROM cards WHERE card_id COLLATE \"C\" "
                             ">= 'CARD' ORDER BY card_id COLLATE \"C\" LIMIT 5",
                             "ix_cards_card_id_c")):
                        plan = " ".join(r[0] for r in conn.execute(text("EXPLAIN " + sql)))
                        assert index in plan, plan
        finally:
            store.close()


def test_short_admin_token_is_a_config_error(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    """A guessable admin token stops the server with the variable's name; a long one is read."""
    from pos_loyalty.errors import ConfigError

    monkeypatch.setenv("POS_LOYALTY_ADMIN_TOKEN", "secret")
    with pytest.raises(ConfigError, match=r"POS_LOYALTY_ADMIN_TOKEN.*at least 32"):
        Settings.from_env(f"sqlite:///{tmp_path / 'c.db'}")
    monkeypatch.setenv("POS_LOYALTY_ADMIN_TOKEN", TOKEN)
    assert Settings.from_env(f"sqlite:///{tmp_path / 'c.db'}").admin_token == TOKEN
