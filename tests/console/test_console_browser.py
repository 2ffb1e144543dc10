"""The console in a real headless Chromium (Debian's, driven by Playwright) against a live
server: what a person sees and can do. Screenshots go to tests/.artifacts/console/.

Skipped, saying why, where /usr/bin/chromium or Playwright is missing, unless
POS_LOYALTY_REQUIRE_BROWSER=1 (CI), where that is a failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pos_loyalty.server.central import CentralStore
from pos_loyalty.server.console.accounts import ConsoleAccounts
from pos_loyalty.sync.client import SyncClient
from pos_loyalty.web import csrf
from tests.conftest import REPO
from tests.console.conftest import PASSWORD

ARTIFACTS = REPO / "tests" / ".artifacts" / "console"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@dataclass
class Live:
    url: str
    store: CentralStore
    accounts: ConsoleAccounts


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    """A central server on loopback (real uvicorn) with an admin, a manager of S-A, and a
    terminal already in S-B."""
    from pos_loyalty.migrations import upgrade_central
    from pos_loyalty.server.app import create_app
    from pos_loyalty.server.config import Settings
    from pos_loyalty.server.runner import ServerThread

    url = f"sqlite:///{tmp_path / 'central.db'}"
    upgrade_central(url)
    store = CentralStore(url)
    accounts = ConsoleAccounts(store)
    accounts.add_user("ada", PASSWORD, "admin", actor="test", display_name="Ada")
    accounts.add_user("mia", PASSWORD, "manager", actor="test", stores=["S-A"])
    app = create_app(Settings(db_url=url), store=store, migrate=False)
    with ServerThread(app) as srv:
        yield Live(srv.url, store, accounts)
    store.close()


def _shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000
    return path


def _sign_in(page: Any, live: Live, user: str) -> None:
    page.goto(f"{live.url}/")
    assert page.inner_text("h1") == "Sign in"
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live.url}/console/")


class TestAdmin:
    def test_admin_signs_in_and_enrolls_a_terminal(self, browser: Any, live: Live) -> None:
        """Sign in, add store S-A from its form, read the one-time code off the page, enroll
        a terminal with it over the real API: the store page then shows it enrolled."""
        ctx = browser.new_context(viewport=DESKTOP)
        page = ctx.new_page()
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        _sign_in(page, live, "ada")
        assert "Ada (administrator)" in page.inner_text("header")
        page.click("text=Stores and terminals")
        page.fill("#store_id", "S-A")
        page.click("text=Add store and terminal")
        code = page.inner_text("#enroll-code")
        terminal_id = page.inner_text("#terminal-id")
        assert "This code is shown once" in page.inner_text("main")
        _shot(page, "enroll-code-desktop")
        with SyncClient(live.url) as anon:
            answer = anon.enroll(code)
        assert answer["terminal_id"] == terminal_id and answer["store_id"] == "S-A"
        page.click("text=Back to the store")
        row = page.locator("tr", has_text=terminal_id)
        assert "enrolled" in row.inner_text()
        _shot(page, "store-desktop")
        page.set_viewport_size(PHONE)
        _shot(page, "store-phone")
        # on a phone the navigation wraps; no part of the page needs a wide screen
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"] + 1
        # the stylesheet was loaded, and nothing was asked of any other site
        assert f"{live.url}/static/web/web.css" in requested
        assert [u for u in requested if not u.startswith(live.url + "/")] == []
        ctx.close()

    def test_form_without_its_csrf_token_is_refused(self, browser: Any, live: Live) -> None:
        """The add-store form with its hidden token removed is refused with a page that says
        so, and no store or terminal is made."""
        ctx = browser.new_context(viewport=DESKTOP)
        page = ctx.new_page()
        _sign_in(page, live, "ada")
        page.goto(f"{live.url}/console/stores")
        page.fill("#store_id", "S-Z")
        page.evaluate("document.querySelector('form[action=\"/console/stores\"] "
                      "input[name=csrf_token]').remove()")
        page.click("text=Add store and terminal")
        assert page.inner_text("h1") == "You cannot do this"
        assert "This form has expired" in page.inner_text("main")
        _shot(page, "csrf-refused")
        assert [t for t in live.store.terminals() if t["store_id"] == "S-Z"] == []
        ctx.close()


class TestManager:
    def test_manager_of_a_cannot_see_or_change_b(self, browser: Any, live: Live) -> None:
        """The manager of S-A sees S-A only; S-B's page is 'Page not found'; a revoke of
        S-B's terminal, even with a token valid for it, is refused and changes nothing."""
        live.store.add_terminal("S-A")
        b_terminal, code = live.store.add_terminal("S-B")
        live.store.enroll(code)
        ctx = browser.new_context(viewport=DESKTOP)
        page = ctx.new_page()
        _sign_in(page, live, "mia")
        page.click("text=Stores and terminals")
        table = page.inner_text("table")
        assert "S-A" in table and "S-B" not in table
        assert "Add a store" not in page.inner_text("main")
        _shot(page, "manager-stores")
        page.goto(f"{live.url}/console/stores/S-B")
        assert page.inner_text("h1") == "Page not found"
        cookie = next(c["value"] for c in ctx.cookies() if c["name"] == "pl_console")
        session = live.accounts.session(cookie)
        assert session is not None
        action = f"/console/terminals/{b_terminal}/revoke"
        answer = ctx.request.post(f"{live.url}{action}", form={
            "csrf_token": csrf.token(session.csrf_secret, action)}, max_redirects=0)
        assert answer.status == 403
        assert "You cannot make changes in this store." in answer.text()
        assert [t["status"] for t in live.store.terminals()
                if t["terminal_id"] == b_terminal] == ["active"]
        ctx.close()


class TestHebrew:
    def test_hebrew_browser_gets_a_right_to_left_console(self, browser: Any,
                                                         live: Live) -> None:
        """A browser set to Hebrew gets dir=rtl, the Hebrew heading, and after sign-in the
        navigation in Hebrew, laid out from the right."""
        ctx = browser.new_context(viewport=DESKTOP, locale="he-IL")
        page = ctx.new_page()
        page.goto(f"{live.url}/console/login")
        assert page.get_attribute("html", "dir") == "rtl"
        assert page.get_attribute("html", "lang") == "he"
        assert page.inner_text("h1") == "כניסה"
        page.fill("#username", "ada")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live.url}/console/")
        assert page.inner_text("h1") == "מחשוב החנויות"
        nav = page.locator("nav a").first
        box = nav.bounding_box()
        assert box is not None and box["x"] > DESKTOP["width"] / 2  # starts on the right
        _shot(page, "home-hebrew")
        ctx.close()
