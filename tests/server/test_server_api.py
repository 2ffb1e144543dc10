"""The HTTP API against a real uvicorn on loopback: credentials, enrollment, bad input."""

from __future__ import annotations

import json
from datetime import datetime

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pos_loyalty.ids import uuid7
from tests.conftest import Central, TerminalFactory


def _event(terminal_id: str, seq: int, **over: object) -> dict[str, object]:
    ev: dict[str, object] = {
        "event_id": str(uuid7()), "terminal_id": terminal_id, "terminal_seq": seq,
        "member_id": "M1", "kind": "earn", "points": 10, "txn_ref": f"POS-1/{seq}",
        "terminal_time": datetime(2026, 1, 1, 12, 0).isoformat(), "offline": True,
    }
    ev.update(over)
    return ev


def _bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


class TestCredentials:
    def test_openapi_document_is_served(self, central: Central) -> None:
        """GET /openapi.json returns the API description naming the push route."""
        r = httpx.get(f"{central.url}/openapi.json")
        assert r.status_code == 200
        assert "/v1/ledger/push" in r.json()["paths"]

    @pytest.mark.parametrize("header", [None, "Basic abc", "Bearer", "Bearer nodot",
                                        "Bearer T-NOPE.secret"])
    def test_missing_or_unknown_credential_is_401_with_reason(
            self, central: Central, header: str | None) -> None:
        """Every terminal route refuses a missing, malformed or unknown credential with 401."""
        headers = {"Authorization": header} if header is not None else {}
        for method, path in (("GET", "/v1/sync/horizon"),
                             ("GET", "/v1/sync/pull?entity=members&until=1"),
                             ("POST", "/v1/ledger/push")):
            r = httpx.request(method, f"{central.url}{path}", headers=headers,
                              content=b'{"events": []}')
            assert r.status_code == 401, (path, r.text)
            assert r.json()["error"] == "unauthorized"
            assert r.json()["reason"]

    def test_wrong_secret_for_a_known_terminal_is_401(self, terminals: TerminalFactory) -> None:
        """A credential with the right terminal id but a wrong secret is refused."""
        t = terminals()
        r = httpx.get(f"{t.server_url}/v1/sync/horizon", headers=_bearer(t.terminal_id + ".x"))
        assert r.status_code == 401
        assert "invalid" in r.json()["reason"]

    def test_revoked_terminal_is_403(self, central: Central, terminals: TerminalFactory) -> None:
        """After revocation the same credential gets 403 naming the revocation."""
        t = terminals()
        ok = httpx.get(f"{t.server_url}/v1/sync/horizon", headers=_bearer(t.credential))
        assert ok.status_code == 200
        assert central.store.revoke_terminal(t.terminal_id)
        r = httpx.get(f"{t.server_url}/v1/sync/horizon", headers=_bearer(t.credential))
        assert r.status_code == 403
        assert "revoked" in r.json()["reason"]

    def test_event_of_another_terminal_is_refused(self, terminals: TerminalFactory) -> None:
        """An event whose terminal_id is not the credential's is refused with 403; nothing lands."""
        a, b = terminals(), terminals()
        body = {"events": [_event(a.terminal_id, 1), _event(b.terminal_id, 1)]}
        r = httpx.post(f"{a.server_url}/v1/ledger/push", json=body, headers=_bearer(a.credential))
        assert r.status_code == 403
        assert b.terminal_id in r.json()["reason"]
        assert terminals.central.store.ledger_count() == 0

    def test_credential_is_stored_hashed(self, central: Central,
                                         terminals: TerminalFactory) -> None:
        """The server's database holds no copy of the credential's secret."""
        from sqlalchemy import select

        from pos_loyalty.store.central_models import Terminal

        t = terminals()
        secret = t.credential.rpartition(".")[2]
        with central.store.engine.connect() as conn:
            row = conn.execute(select(Terminal).where(
                Terminal.terminal_id == t.terminal_id)).one()
        assert secret not in " ".join(str(v) for v in row)
        assert row.credential_hash is not None and len(row.credential_hash) == 64


class TestEnrollment:
    def test_code_works_once(self, central: Central) -> None:
        """An enrollment code yields a credential scoped to its store, then never again."""
        tid, code = central.store.add_terminal("S9")
        r = httpx.post(f"{central.url}/v1/enroll", json={"code": code.lower()})
        assert r.status_code == 200
        assert r.json()["terminal_id"] == tid and r.json()["store_id"] == "S9"
        again = httpx.post(f"{central.url}/v1/enroll", json={"code": code})
        assert again.status_code == 403
        assert "used" in again.json()["reason"]

    def test_revoked_before_use_code_is_refused(self, central: Central) -> None:
        """Revoking a pending terminal also kills its unused code."""
        tid, code = central.store.add_terminal("S1")
        central.store.revoke_terminal(tid)
        r = httpx.post(f"{central.url}/v1/enroll", json={"code": code})
        assert r.status_code == 403

    def test_expired_code_is_refused(self, central: Central) -> None:
        """A code past its lifetime cannot be exchanged."""
        _tid, code = central.store.add_terminal("S1", ttl_s=-1)
        r = httpx.post(f"{central.url}/v1/enroll", json={"code": code})
        assert r.status_code == 403


# Body parsing does not depend on the database: these run on SQLite only.
SQLITE_ONLY = pytest.mark.parametrize("central_url", ["sqlite"], indirect=True)


@SQLITE_ONLY
class TestBadInput:
    def test_malformed_push_is_4xx_json(self, terminals: TerminalFactory) -> None:
        """Garbage bodies get a 4xx JSON answer with a reason, never a 5xx."""
        t = terminals()
        for body in (b"", b"{", b"null", b"[]", b'{"events": 5}', b'{"events": [{}]}',
                     b'{"events": [{"event_id": 1}]}', b"\xff\xfe\x00", b"[" * 100_000,
                     b'{"events": [], "clock_offset_ms": 1e400}', b'{"events": [], "extra": 1}'):
            r = httpx.post(f"{t.server_url}/v1/ledger/push", content=body,
                           headers=_bearer(t.credential))
            assert 400 <= r.status_code < 500, (body[:20], r.text)
            assert r.json()["reason"]

    def test_wrong_field_types_are_422(self, terminals: TerminalFactory) -> None:
        """A field of the wrong type or out of range is 422 naming the field."""
        t = terminals()
        for field, value in (
            ("points", "ten"), ("points", 10**30), ("terminal_seq", 0), ("terminal_seq", -1),
            ("kind", "steal"), ("member_id", ""), ("member_id", "x" * 65),
            ("terminal_time", "soon"), ("event_id", None), ("offline", [1]),
            ("txn_ref", "r" * 141),
        ):
            body = {"events": [_event(t.terminal_id, 1, **{field: value})]}
            r = httpx.post(f"{t.server_url}/v1/ledger/push", json=body,
                           headers=_bearer(t.credential))
            assert r.status_code == 422, (field, r.text)
            assert field in r.json()["reason"]
        assert terminals.central.store.ledger_count() == 0

    def test_huge_body_is_413(self, terminals: TerminalFactory) -> None:
        """A body over the cap is refused with 413, announced or streamed in chunks."""
        t = terminals()
        url = f"{t.server_url}/v1/ledger/push"
        big = b"x" * (9 * 1024 * 1024)
        r = httpx.post(url, content=big, headers=_bearer(t.credential))
        assert r.status_code == 413

        def chunks() -> object:
            for _ in range(300):
                yield b" " * 32768

        r2 = httpx.post(url, content=chunks(), headers=_bearer(t.credential))  # type: ignore[arg-type]
        assert r2.status_code == 413
        assert r2.json()["error"] == "body too large"

    def test_too_many_events_is_422(self, terminals: TerminalFactory) -> None:
        """A batch over the size limit is refused as a whole."""
        t = terminals()
        body = {"events": [_event(t.terminal_id, i + 1) for i in range(5001)]}
        r = httpx.post(f"{t.server_url}/v1/ledger/push", json=body,
                       headers=_bearer(t.credential))
        assert r.status_code in (413, 422)

    def test_bad_pull_parameters_are_422(self, terminals: TerminalFactory) -> None:
        """Unknown entity, bad cursor or out-of-range numbers are 422, not 5xx."""
        t = terminals()
        for q in ("entity=nope&until=1", "entity=members&until=-1",
                  "entity=members&until=1&after=zz", "entity=members&until=1&limit=0",
                  "entity=members&until=99999999999999999999999",
                  "entity=members&until=1&after=" + "9" * 30 + ":x"):
            r = httpx.get(f"{t.server_url}/v1/sync/pull?{q}", headers=_bearer(t.credential))
            assert r.status_code == 422, (q, r.text)


@SQLITE_ONLY
class TestFuzz:
    @settings(max_examples=120, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(body=st.one_of(
        st.binary(max_size=2000),
        st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                     lambda c: st.lists(c, max_size=4)
                     | st.dictionaries(st.sampled_from(
                         ["events", "event_id", "terminal_id", "terminal_seq", "member_id",
                          "kind", "points", "terminal_time", "clock_offset_ms", "offline"]), c,
                         max_size=5), max_leaves=20).map(lambda v: json.dumps(v).encode()),
    ))
    def test_push_never_answers_5xx(self, fuzz_client: tuple[httpx.Client, str],
                                    body: bytes) -> None:
        """Any byte string or JSON-shaped junk pushed with a valid credential gets a 2xx/4xx."""
        client, _tid = fuzz_client
        r = client.post("/v1/ledger/push", content=body)
        assert r.status_code < 500, r.text
        assert isinstance(r.json(), dict)

    @settings(max_examples=40, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(code=st.text(max_size=80), extra=st.binary(max_size=200))
    def test_enroll_never_answers_5xx(self, fuzz_client: tuple[httpx.Client, str], code: str,
                                      extra: bytes) -> None:
        """Random codes and random bytes to /v1/enroll are refused with 4xx (429 once this
        client has sent too many wrong codes)."""
        client, _tid = fuzz_client
        assert client.post("/v1/enroll", json={"code": code}).status_code in (403, 422, 429)
        assert client.post("/v1/enroll", content=extra).status_code in (400, 422)


@pytest.fixture
def fuzz_client(terminals: TerminalFactory) -> object:
    t = terminals()
    with httpx.Client(base_url=t.server_url, headers=_bearer(t.credential)) as client:
        yield client, t.terminal_id
