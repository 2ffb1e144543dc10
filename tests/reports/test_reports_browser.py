"""The owner's report pages in real headless Chromium (Debian's, driven by Playwright), on a
small generated chain behind a live server. Screenshots go to tests/.artifacts/reports/.

Skipped, saying why, where /usr/bin/chromium or Playwright is missing, unless
POS_LOYALTY_REQUIRE_BROWSER=1 (CI), where that is a failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from pos_loyalty.insight.chain import PROGRAM, ChainSpec
from pos_loyalty.server.central import CentralStore
from pos_loyalty.server.console.accounts import ConsoleAccounts
from pos_loyalty.server.sales.bulk import write_chain
from pos_loyalty.store.central_models import SaleRecord
from tests.conftest import REPO

ARTIFACTS = REPO / "tests" / ".artifacts" / "reports"
PASSWORD = "a long enough passphrase"
UNTIL = "2026-11-30"


@dataclass
class Live:
    url: str
    store: CentralStore


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    """A generated chain (3 stores, 150 members, a year) behind a live central server."""
    from pos_loyalty.migrations import upgrade_central
    from pos_loyalty.server.app import create_app
    from pos_loyalty.server.config import Settings
    from pos_loyalty.server.runner import ServerThread

    url = f"sqlite:///{tmp_path / 'central.db'}"
    upgrade_central(url)
    store = CentralStore(url)
    write_chain(store, ChainSpec(stores=3, members=150, days=365, seed=11))
    store.publish_program(PROGRAM)
    accounts = ConsoleAccounts(store)
    accounts.add_user("ada", PASSWORD, "admin", actor="test", display_name="Ada")
    accounts.add_user("sam", PASSWORD, "manager", actor="test", stores=["S02"])
    app = create_app(Settings(db_url=url), store=store, migrate=False)
    with ServerThread(app) as srv:
        yield Live(srv.url, store)
    store.close()


def members_who_bought(store: CentralStore, stores: tuple[str, ...] = ()) -> int:
    """Counted here straight from the sales table, not by the report's code."""
    s = SaleRecord
    stmt = select(func.count(s.member_id.distinct())).where(
        s.kind == "sale", s.terminal_time >= datetime(2025, 12, 1),
        s.terminal_time < datetime(2026, 12, 1))
    if stores:
        stmt = stmt.where(s.store_id.in_(stores))
    with store.read() as conn:
        return int(conn.execute(stmt).scalar_one())


def _sign_in(page: Any, live: Live, user: str) -> None:
    page.goto(f"{live.url}/console/login")
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live.url}/console/")


def _shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    return path


def _figure(page: Any, label: str) -> str:
    return str(page.inner_text(f'dd[data-figure="{label}"]')).strip()


class TestReportPages:
    def test_owner_sees_every_report_with_charts_and_no_script(
            self, browser: Any, live: Live) -> None:
        """From the nav to the full report: figures match the sales table, seven SVG
        charts drawn with their own colours (the page's CSP lets exactly their styles in),
        no script, no request to another site, no CSP violation."""
        ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        page = ctx.new_page()
        requested: list[str] = []
        errors: list[str] = []
        page.on("request", lambda r: requested.append(r.url))
        page.on("console", lambda m: errors.append(m.text))
        _sign_in(page, live, "ada")
        page.click("nav >> text=Reports")
        page.wait_for_url(f"{live.url}/console/reports")
        assert page.inner_text("h1") == "Reports"
        page.goto(f"{live.url}/console/reports/all?until={UNTIL}")
        assert page.inner_text("h1") == "All reports"
        assert _figure(page, "Members who bought") == str(members_who_bought(live.store))
        assert page.locator("section.report").count() == 9
        assert page.locator("figure.chart svg").count() == 7
        assert page.locator("script").count() == 0
        bar = page.locator("#report-liability figure.chart svg .rect").first
        fill = bar.evaluate("e => getComputedStyle(e).fill")
        assert fill == "rgb(29, 112, 184)", fill  # the chart's own style, not the default
        assert page.locator('#report-lapsed table[data-table="call-list"] tbody tr').count() > 0
        assert all(u.startswith(live.url) for u in requested), requested
        assert [e for e in errors if "Content Security Policy" in e] == []
        _shot(page, "report-all-en")
        ctx.close()

    def test_hebrew_right_to_left_and_a_manager_sees_only_their_store(
            self, browser: Any, live: Live) -> None:
        """A Hebrew browser gets the page right to left; a store manager's figures are
        their store's."""
        ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="he-IL",
                                  extra_http_headers={"Accept-Language": "he"})
        page = ctx.new_page()
        _sign_in(page, live, "sam")
        page.goto(f"{live.url}/console/reports/customers?until={UNTIL}")
        assert page.get_attribute("html", "dir") == "rtl"
        assert page.inner_text("h1") == "לקוחות"
        assert _figure(page, "Members who bought") == str(
            members_who_bought(live.store, ("S02",)))
        assert page.locator("#store option").all_inner_texts()[1:] == ["S02"]
        _shot(page, "report-customers-he")
        other = page.goto(f"{live.url}/console/reports/customers?store=S01")
        assert other is not None and other.status == 404
        ctx.close()

    def test_manager_on_a_phone_in_hebrew(self, browser: Any, live: Live) -> None:
        """On a phone-sized screen the page is no wider than the screen (wide tables scroll
        inside their own box); a date or store the report cannot answer is a 400 that says
        why, not a server error."""
        ctx = browser.new_context(viewport={"width": 390, "height": 844}, locale="he-IL",
                                  extra_http_headers={"Accept-Language": "he"},
                                  is_mobile=True, has_touch=True)
        page = ctx.new_page()
        _sign_in(page, live, "sam")
        for name in ("lapsed", "all"):
            page.goto(f"{live.url}/console/reports/{name}?until={UNTIL}")
            assert page.get_attribute("html", "dir") == "rtl"
            wide = page.evaluate("document.documentElement.scrollWidth")
            assert wide <= 390, (name, wide)
        _shot(page, "report-all-he-phone")
        late = page.goto(f"{live.url}/console/reports/customers?until=9999-12-31")
        assert late is not None and late.status == 400
        assert "9999-12-31" in page.inner_text("main")
        ctx.close()
        admin = browser.new_context(viewport={"width": 390, "height": 844})
        page = admin.new_page()
        _sign_in(page, live, "ada")
        unknown = page.goto(f"{live.url}/console/reports/customers?store=S99")
        assert unknown is not None and unknown.status == 400
        assert "no store 'S99'" in page.inner_text("main")
        admin.close()
