"""The console in a real headless Chromium (Debian's, driven by Playwright) against a live
server: what a person sees and can do. Screenshots go to tests/.artifacts/console/.

Skipped, saying why, where /usr/bin/chromium or Playwright is missing, unless
POS_LOYALTY_REQUIRE_BROWSER=1 (CI), where that is a failure.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pos_loyalty.nfc.sim.cards import member_card
from pos_loyalty.nfc.sim.emulator import TagEmulator
from pos_loyalty.pos.pty import PtyBridge
from pos_loyalty.pos.till import SimulatedTill
from pos_loyalty.server.central import CentralStore
from pos_loyalty.server.console.accounts import ConsoleAccounts
from pos_loyalty.sync.client import SyncClient, run_sync
from pos_loyalty.web import csrf
from tests.conftest import REPO, Central, TerminalFactory
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

    def test_program_text_and_changes_read_left_to_right_in_hebrew(self, browser: Any,
                                                                    live: Live) -> None:
        """On a right-to-left page the program's TOML and the changes in words (English,
        code-like) still run left to right: `name = "Triple"` is not shown as
        `"name = "Triple`. Measured on the rendered characters, with JavaScript off."""
        ctx = browser.new_context(viewport=PHONE, locale="he-IL", java_script_enabled=False)
        page = ctx.new_page()
        page.goto(f"{live.url}/console/login")
        page.fill("#username", "ada")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.goto(f"{live.url}/console/programs")
        page.fill("#body", TRIPLE)
        page.locator("form[action='/console/programs/check'] button[type=submit]").click()
        assert page.get_attribute("html", "dir") == "rtl"
        first = page.locator("#changes li").first.inner_text()
        assert first == "name 'Default points' -> 'Triple'", first
        # x of the first and the last character of that line as laid out
        xs = page.evaluate("""() => {
            const text = document.querySelector('#changes li bdi').firstChild;
            const at = i => { const r = document.createRange(); r.setStart(text, i);
                              r.setEnd(text, i + 1); return r.getBoundingClientRect().x; };
            return [at(0), at(text.length - 1)];
        }""")
        assert xs[0] < xs[1], xs  # "n" of name left of the closing quote
        bidi = page.eval_on_selector("#body", "e => getComputedStyle(e).unicodeBidi")
        assert bidi == "plaintext"  # each line of the text area takes its own direction
        _shot(page, "program-check-hebrew-phone")
        ctx.close()


TRIPLE = '[program]\nname = "Triple"\n\n[[rule]]\nid = "base"\nkind = "earn"\n' \
         'label = "3 pts per 1.00"\npoints = 3\nper = 100\n'
BASKET = [{"sku": "A", "qty": 1, "unit_price": 1000, "category": "x"}]


def _quote(till: SimulatedTill, rf: TagEmulator, txn: str) -> dict[str, Any]:
    """Tap member card C-1 at the running daemon, send a basket of 10.00: its quote."""
    rf.present(member_card("C-1"))
    got = till.next_message({"member.identified", "member.unknown", "card.refused"},
                            timeout=20)
    assert got["type"] == "member.identified", got
    rf.remove()
    return till.send_basket(txn, BASKET)


class TestProgramRollout:
    def test_admin_publishes_a_program_after_its_dry_run_and_the_till_quotes_it(
            self, browser: Any, live: Live, tmp_path: Path) -> None:
        """A daemon (`pos-loyalty run`, its own process, a real pty to the reference till,
        nfcpy over udp) enrolled in S-A quotes 10 points under the built-in program. The
        admin uploads a 3-points program, reads the diff and the dry run over the chain's
        last 30 days of sales (the sale just made, pushed by the daemon), publishes: the
        next quotes carry Triple v1 and 30 points, with no restart."""
        live.store.add_member("M-1", "Ann", card_id="C-1")
        factory = TerminalFactory(Central(live.url, str(live.store.engine.url), live.store),
                                  tmp_path)
        t = factory("S-A", name="terminal")
        with SyncClient(t.server_url, t.credential) as client:
            assert run_sync(t.local, client).ok
        db = str(t.local.engine.url)
        factory.close()
        cfg = tmp_path / "terminal.toml"
        cfg.write_text(f'[terminal]\ndata_dir = "{tmp_path}"\n[sync]\ninterval_s = 0.3\n')
        program_file = tmp_path / "triple.toml"
        program_file.write_text(TRIPLE)
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with TagEmulator() as rf, PtyBridge() as bridge:
            proc = subprocess.Popen(
                [sys.executable, "-m", "pos_loyalty", "run", "--simulation", "--config",
                 str(cfg), "--serial", bridge.terminal_path, "--reader",
                 f"udp:127.0.0.1:{rf.port}", "--db", db],
                env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                with SimulatedTill(bridge.till_path, pos_id="POS-1") as till:
                    till.wait_link_up(timeout=30)
                    before = _quote(till, rf, "T1")
                    assert before["points_total"] == 10, before
                    till.commit("T1")
                    deadline = time.monotonic() + 30  # the sale reaches central's baskets
                    while not list(live.store.central_baskets(days=30)) \
                            and time.monotonic() < deadline:
                        time.sleep(0.2)

                    ctx = browser.new_context(viewport=DESKTOP)
                    page = ctx.new_page()
                    _sign_in(page, live, "ada")
                    page.click("nav >> text=Programs")
                    assert "Built-in: 1 point per 1.00" in page.inner_text("#live")
                    assert "only after its dry run" in page.inner_text("main")
                    page.set_input_files("#program_file", str(program_file))
                    page.click("text=Check and dry run")
                    assert page.inner_text("h1") == "Check a program"
                    assert "The program Triple is valid" in page.inner_text("#valid")
                    changes = page.inner_text("#changes")  # against the built-in program
                    assert "name 'Default points' -> 'Triple'" in changes
                    assert "new rule 3 pts per 1.00: earn 3 pts per 1.00" in changes
                    assert page.inner_text("#dry-run-source").startswith(
                        "Sales of the last 30 days (the whole chain) replayed: 1,")
                    total = page.locator("#dry-run tr.total td").all_inner_texts()
                    # the 10.00 sale the till just made: 30 points new beside 10 live
                    assert total[:3] == ["Total", "30", "10"] and total[-1] == "+0.20", total
                    _shot(page, "program-dry-run")
                    page.fill("#note", "triple points week")
                    page.click("text=Publish this program")
                    page.wait_for_url(f"{live.url}/console/programs?done=published")
                    assert "The program is published." in page.inner_text(".notice")
                    row = page.locator("#live tr", has_text="The whole chain").inner_text()
                    assert "Triple" in row and "1" in row
                    _shot(page, "program-published")

                    deadline = time.monotonic() + 30
                    n = 2
                    while True:
                        after = _quote(till, rf, f"T{n}")
                        if after.get("program") == {"name": "Triple", "version": 1} \
                                or time.monotonic() > deadline:
                            break
                        till.void(f"T{n}")
                        n += 1
                        time.sleep(0.3)
                    assert after.get("program") == {"name": "Triple", "version": 1}, after
                    assert after["points_total"] == 30, after
                    # the fleet page shows the program the terminal reports it runs
                    deadline = time.monotonic() + 30
                    while live.store.terminal_health(t.terminal_id).program_version != 1 \
                            and time.monotonic() < deadline:
                        time.sleep(0.2)
                    page.set_viewport_size(PHONE)
                    page.click("nav >> text=Fleet health")
                    terminal = page.inner_text(f"#terminal-{t.terminal_id}")
                    assert "Triple v1" in terminal and "in contact" in terminal, terminal
                    _shot(page, "fleet-phone")
                    width = page.evaluate("document.documentElement.scrollWidth")
                    assert width <= PHONE["width"] + 1
                    ctx.close()
                proc.send_signal(signal.SIGTERM)
                _out, err = proc.communicate(timeout=30)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
        assert proc.returncode == 0, err
        assert "program now Triple v1" in err


class TestMembersOnAPhone:
    def test_manager_finds_a_member_and_replaces_a_lost_card(self, browser: Any,
                                                             live: Live) -> None:
        """On a phone-sized screen a store manager searches by name, opens the member,
        replaces the lost card: the page then shows the old card blocked, the new one
        active and the same balance; nothing is wider than the screen."""
        live.store.add_member("M-7", "Dana Levi", card_id="C-70")
        live.store.adjust_points("M-7", 120, "welcome")
        ctx = browser.new_context(viewport=PHONE)
        page = ctx.new_page()
        _sign_in(page, live, "mia")
        page.click("nav >> text=Members")
        page.fill("#q", "dana")
        page.click("text=Search")
        assert "Dana Levi" in page.inner_text("#found")
        page.click("#found >> text=M-7")
        assert page.inner_text("h1") == "Member M-7"
        assert page.inner_text("#balance") == "120"
        page.select_option("#lost_card", "C-70")
        page.fill("#new_card", "C-71")
        page.click("text=Block and replace")
        assert "the new card carries the balance" in page.inner_text(".notice")
        cards = page.inner_text("#cards")
        assert "C-70\tblocked" in cards and "C-71\tactive" in cards, cards
        assert page.inner_text("#balance") == "120"
        _shot(page, "member-phone")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"] + 1
        ctx.close()
