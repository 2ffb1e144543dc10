"""The console over real HTTP (uvicorn on loopback): sign-in, cookies, CSRF, roles, pages."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

import httpx

from pos_loyalty.ids import uuid7
from pos_loyalty.server.console.accounts import ConsoleAccounts, Principal
from tests.conftest import Central, TerminalFactory
from tests.console.conftest import PASSWORD, ConsoleClient, UserFactory, form_tokens

Clients = Callable[[], ConsoleClient]


def _h1(html: str) -> str:
    found = re.search(r"<h1>(.*?)</h1>", html, re.S)
    return re.sub(r"<[^>]+>", "", found.group(1)).strip() if found else ""


class TestSignIn:
    def test_pages_need_a_session(self, central: Central) -> None:
        """Without signing in, a console page redirects to the sign-in page and back."""
        r = httpx.get(f"{central.url}/console/held")
        assert r.status_code == 303
        assert r.headers["location"] == "/console/login?next=/console/held"

    def test_root_leads_to_the_console_and_docs_are_off(self, central: Central) -> None:
        """`/` redirects to the console; `/docs` (CDN scripts) is gone; the stylesheet is
        served from here; the API description is still there."""
        r = httpx.get(f"{central.url}/", follow_redirects=True)
        assert r.status_code == 200 and _h1(r.text) == "Sign in"
        assert httpx.get(f"{central.url}/docs").status_code == 404
        css = httpx.get(f"{central.url}/static/web/web.css")
        assert css.status_code == 200 and "margin-inline" in css.text
        assert httpx.get(f"{central.url}/openapi.json").status_code == 200

    def test_sign_in_sets_a_locked_down_cookie(self, users: UserFactory,
                                               client: Clients) -> None:
        """The session cookie is HttpOnly, SameSite=Lax, scoped to /console/; not Secure over
        plain HTTP; pages carry a strict CSP and no third-party address."""
        users("ada")
        c = client()
        r = c.sign_in("ada")
        assert r.status_code == 303 and r.headers["location"] == "/console/"
        cookie = r.headers["set-cookie"]
        assert "pl_console=" in cookie and "HttpOnly" in cookie
        assert "samesite=lax" in cookie.lower() and "Path=/console/" in cookie
        assert "Secure" not in cookie.split("pl_console_pre")[0]
        home = c.http.get("/console/")
        assert home.status_code == 200 and _h1(home.text) == "Store IT"
        assert "default-src 'none'" in home.headers["content-security-policy"]
        assert not re.search(r'(src|href)="(https?:)?//', home.text)

    def test_wrong_password_is_refused_with_the_error_summary(self, users: UserFactory,
                                                              client: Clients) -> None:
        """A wrong password gives 400, the GOV.UK error summary, the user name kept."""
        users("ada")
        r = client().sign_in("ada", "not the password")
        assert r.status_code == 400
        assert "There is a problem" in r.text
        assert '<a href="#username">The user name or password is not right</a>' in r.text
        assert 'value="ada"' in r.text and "pl_console=" not in r.headers.get("set-cookie", "")

    def test_sign_in_returns_only_to_a_console_page(self, users: UserFactory,
                                                    client: Clients) -> None:
        """`next` pointing at another site is ignored (no open redirect); a console path is
        followed."""
        users("ada")
        c = client()
        for wanted, landed in (("https://evil.example/", "/console/"),
                               ("//evil.example/x", "/console/"),
                               ("/console/held", "/console/held")):
            page = c.http.get("/console/login", params={"next": wanted})
            token = form_tokens(page.text)["/console/login"]
            r = c.http.post("/console/login", data={
                "csrf_token": token, "username": "ada", "password": PASSWORD,
                "next": wanted})
            assert r.headers["location"] == landed

    def test_sign_out_ends_the_session(self, users: UserFactory, client: Clients) -> None:
        """After signing out, the old cookie opens nothing."""
        users("ada")
        c = client()
        c.sign_in("ada")
        old = dict(c.http.cookies)
        assert c.post_form("/console/", "/console/logout", {}).status_code == 303
        r = httpx.get(f"{str(c.http.base_url).rstrip('/')}/console/", cookies=old)
        assert r.status_code == 303


class TestCsrf:
    def test_form_without_its_token_is_refused(self, central: Central, users: UserFactory,
                                               client: Clients) -> None:
        """A post with no token, or another form's token, is 403 and changes nothing."""
        users("ada")
        c = client()
        c.sign_in("ada")
        r = c.http.post("/console/stores", data={"store_id": "S-X"})
        assert r.status_code == 403 and "This form has expired" in r.text
        other = form_tokens(c.http.get("/console/stores").text)["/console/logout"]
        r = c.http.post("/console/stores", data={"store_id": "S-X", "csrf_token": other})
        assert r.status_code == 403
        assert central.store.terminals() == []

    def test_sign_in_form_needs_its_token_too(self, users: UserFactory,
                                              client: Clients) -> None:
        """A sign-in posted from elsewhere (no token, no pre-session cookie) is refused."""
        users("ada")
        r = client().http.post("/console/login", data={"username": "ada",
                                                       "password": "a long enough passphrase"})
        assert r.status_code == 403


class TestStores:
    def test_admin_enrolls_a_terminal_with_the_code_shown(
            self, central: Central, users: UserFactory, client: Clients) -> None:
        """The code on the page enrolls the terminal over the real API; the store page then
        shows it enrolled, and the audit log has the change."""
        users("ada")
        c = client()
        c.sign_in("ada")
        r = c.post_form("/console/stores", "/console/stores", {"store_id": "S-A"})
        assert r.status_code == 200
        code = re.search(r'id="enroll-code">([A-Z0-9-]+)<', r.text)
        tid = re.search(r'id="terminal-id">([^<]+)<', r.text)
        assert code and tid
        enrolled = httpx.post(f"{central.url}/v1/enroll", json={"code": code.group(1)})
        assert enrolled.status_code == 200
        assert enrolled.json()["terminal_id"] == tid.group(1)
        page = c.http.get("/console/stores/S-A").text
        assert tid.group(1) in page and "enrolled" in page
        audit = c.http.get("/console/audit").text
        assert "terminal.add" in audit and tid.group(1) in audit

    def test_bad_store_id_shows_the_error_beside_the_field(self, users: UserFactory,
                                                           client: Clients) -> None:
        """An invalid store id gets 400, the summary and the field's own message."""
        users("ada")
        c = client()
        c.sign_in("ada")
        r = c.post_form("/console/stores", "/console/stores", {"store_id": "no spaces"})
        assert r.status_code == 400
        assert 'href="#store_id"' in r.text and 'id="store_id-error"' in r.text
        assert 'value="no spaces"' in r.text

    def test_manager_of_a_cannot_see_or_change_b(self, central: Central, users: UserFactory,
                                                 client: Clients) -> None:
        """A manager of S-A sees only S-A's terminals; S-B's page is 404, revoking S-B's
        terminal is 403 and it stays active, enrolling into S-B is 403."""
        a_tid, _ = central.store.add_terminal("S-A")
        b_tid, b_code = central.store.add_terminal("S-B")
        central.store.enroll(b_code)
        users("mia", "manager", ("S-A",))
        c = client()
        c.sign_in("mia")
        stores = c.http.get("/console/stores").text
        assert "S-A" in stores and "S-B" not in stores
        assert c.http.get("/console/stores/S-B").status_code == 404
        own = c.http.get("/console/stores/S-A").text
        token = form_tokens(own)[f"/console/terminals/{a_tid}/revoke"]
        assert token
        # a valid session and a token of its own, still refused for the other store
        b_action = f"/console/terminals/{b_tid}/revoke"
        r = c.http.post(b_action, data={"csrf_token": c.token_for(b_action)})
        assert r.status_code == 403
        assert [t["status"] for t in central.store.terminals()
                if t["terminal_id"] == b_tid] == ["active"]
        enroll_b = "/console/stores/S-B/terminals"
        r = c.http.post(enroll_b, data={"csrf_token": c.token_for(enroll_b)})
        assert r.status_code == 403
        assert {t["store_id"] for t in central.store.terminals()} == {"S-A", "S-B"}
        assert len(central.store.terminals()) == 2
        r = c.http.post(f"/console/terminals/{a_tid}/revoke", data={"csrf_token": token})
        assert r.status_code == 303

    def test_read_only_user_changes_nothing(self, central: Central, users: UserFactory,
                                            client: Clients) -> None:
        """A read-only user sees every store but gets no change forms and 403 on a post."""
        tid, _ = central.store.add_terminal("S-A")
        users("rita", "readonly")
        c = client()
        c.sign_in("rita")
        page = c.http.get("/console/stores/S-A").text
        assert tid in page and "/revoke" not in page
        action = f"/console/terminals/{tid}/revoke"
        assert c.http.post(action, data={"csrf_token": c.token_for(action)}).status_code == 403
        assert c.http.get("/console/users").status_code == 403


class TestHeld:
    def test_release_and_reject_need_a_reason_and_are_audited(
            self, central: Central, terminals: TerminalFactory, users: UserFactory,
            client: Clients) -> None:
        """Two events held by the per-event cap: one released (balance moves), one rejected
        (balance does not); an empty reason is refused beside the field."""
        central.store.add_member("M1", "Ann")
        t = terminals("S-A")
        events = [{"event_id": str(uuid7()), "terminal_id": t.terminal_id, "terminal_seq": i,
                   "member_id": "M1", "kind": "earn", "points": 10**6, "txn_ref": f"P/{i}",
                   "terminal_time": datetime(2026, 1, 1, 12).isoformat(), "offline": True}
                  for i in (1, 2)]
        r = httpx.post(f"{central.url}/v1/ledger/push", json={"events": events},
                       headers={"Authorization": f"Bearer {t.credential}"})
        assert r.json()["held"] == 2
        users("ada")
        c = client()
        c.sign_in("ada")
        first, second = (str(e["event_id"]) for e in events)
        page = c.http.get("/console/held").text
        assert first in page and "per-event cap" in page
        empty = c.post_form("/console/held", f"/console/held/{first}",
                            {"action": "release", "reason": ""})
        assert empty.status_code == 400 and f'href="#reason-{first}"' in empty.text
        assert central.store.balance("M1") == 0
        ok = c.post_form("/console/held", f"/console/held/{first}",
                         {"action": "release", "reason": "big order, checked"})
        assert ok.status_code == 303
        c.post_form("/console/held", f"/console/held/{second}",
                    {"action": "reject", "reason": "duplicate"})
        assert central.store.balance("M1") == 10**6 == central.store.ledger_sum("M1")
        assert central.store.held() == []
        audit = c.http.get("/console/audit").text
        assert "held.release" in audit and "held.reject" in audit

    def test_reconcile_page_answers(self, users: UserFactory, client: Clients) -> None:
        """The reconciliation page lists its three sections."""
        users("ada")
        c = client()
        c.sign_in("ada")
        page = c.http.get("/console/reconcile")
        assert page.status_code == 200 and page.text.count("<h2>") == 3


class TestUsersPage:
    def test_admin_adds_a_manager_who_can_then_sign_in(self, users: UserFactory,
                                                       client: Clients,
                                                       accounts: ConsoleAccounts) -> None:
        """A user made on the page exists with its role and stores, and can sign in."""
        users("ada")
        c = client()
        c.sign_in("ada")
        bad = c.post_form("/console/users", "/console/users", {
            "username": "mia", "role": "manager", "stores": "", "password": "short"})
        assert bad.status_code == 400 and 'href="#password"' in bad.text
        r = c.post_form("/console/users", "/console/users", {
            "username": "mia", "role": "manager", "stores": "S-A, S-C",
            "password": "mia's long passphrase"})
        assert r.status_code == 303
        assert accounts.check_password("mia", "mia's long passphrase") == Principal(
            "mia", "", "manager", frozenset({"S-A", "S-C"}))


class TestLanguage:
    def test_hebrew_browser_gets_a_right_to_left_page(self, users: UserFactory,
                                                      client: Clients) -> None:
        """Accept-Language: he gives dir=rtl, lang=he and the Hebrew heading."""
        c = client()
        r = c.http.get("/console/login", headers={"Accept-Language": "he-IL,he;q=0.9"})
        assert '<html lang="he" dir="rtl">' in r.text
        assert _h1(r.text) == "כניסה"
        assert r.headers["content-language"] == "he"

    def test_not_found_is_a_page_for_people(self, users: UserFactory,
                                            client: Clients) -> None:
        """An unknown console address is an HTML 404 page, not JSON."""
        users("ada")
        c = client()
        c.sign_in("ada")
        r = c.http.get("/console/no-such-page")
        assert r.status_code == 404 and _h1(r.text) == "Page not found"
