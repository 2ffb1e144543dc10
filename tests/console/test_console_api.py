"""The admin API (/v1/admin) with a console session instead of the admin token: the same
roles as the console, a header for changes, and the audit log, over real HTTP."""

from __future__ import annotations

from collections.abc import Callable

from tests.conftest import Central
from tests.console.conftest import ConsoleClient, UserFactory, form_tokens

Clients = Callable[[], ConsoleClient]
API = "/v1/admin/programs"
BODY = '[program]\nname = "Api"\n\n[[rule]]\nid = "base"\nkind = "earn"\npoints = 2\nper = 100\n'
HEADER = {"X-Console-Api": "1"}


class TestSessionOnTheAdminApi:
    def test_admin_session_reads_and_changes_with_audit(self, central: Central,
                                                        users: UserFactory,
                                                        client: Clients) -> None:
        """Signed in, an administrator's session reads the admin API; a change needs the
        X-Console-Api header, then is made and audited under the user's name; after
        sign-out the same cookie is refused."""
        users("ada")
        c = client()
        anon = c.http.get(API)
        assert anon.status_code == 403 and "sign in to the console" in anon.json()["reason"]
        c.sign_in("ada")
        assert c.http.get(API).json() == {"versions": []}
        bare = c.http.post(API, json={"body": BODY})
        assert bare.status_code == 403 and "X-Console-Api" in bare.json()["reason"]
        assert central.store.program_versions() == []
        made = c.http.post(API, json={"body": BODY}, headers=HEADER)
        assert made.status_code == 201 and made.json()["name"] == "Api"
        bad = c.http.post(API, json={"body": "[program\n"}, headers=HEADER)
        assert bad.status_code == 422  # refused changes are not audited
        audit = c.http.get("/console/audit").text
        assert audit.count("api POST /v1/admin/programs") == 1 and "ada" in audit
        cookie = c.http.cookies.get("pl_console_api", path="/v1/admin/")
        assert cookie
        page = c.http.get("/console/").text
        c.http.post("/console/logout", data={"csrf_token": form_tokens(page)["/console/logout"]})
        assert c.http.cookies.get("pl_console_api", path="/v1/admin/") is None
        again = c.http.get(API, headers={"Cookie": f"pl_console_api={cookie}"})
        assert again.status_code == 401 and "session has ended" in again.json()["reason"]

    def test_roles(self, central: Central, users: UserFactory, client: Clients) -> None:
        """Read-only: reads, but no change even with the header; a store manager: nothing
        (the admin API is not scoped to stores)."""
        users("rex", "readonly")
        users("mia", "manager", ("S-A",))
        r = client()
        r.sign_in("rex")
        assert r.http.get(API).status_code == 200
        refused = r.http.post(API, json={"body": BODY}, headers=HEADER)
        assert refused.status_code == 403 and "readonly" in refused.json()["reason"]
        m = client()
        m.sign_in("mia")
        assert m.http.get("/v1/admin/terminals").status_code == 403
        assert central.store.program_versions() == []

    def test_a_bad_token_is_not_rescued_by_a_session(self, central: Central,
                                                     users: UserFactory,
                                                     client: Clients) -> None:
        """A request with an Authorization header is judged on it alone."""
        users("ada")
        c = client()
        c.sign_in("ada")
        wrong = c.http.get(API, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403  # no admin token configured: token access is off
