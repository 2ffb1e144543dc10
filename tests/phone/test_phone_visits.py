"""The receipt's link: one question about the visit, NPS per store (real HTTP)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from pos_loyalty.ids import link_part, uuid7
from pos_loyalty.server.phone import visits
from pos_loyalty.store.central_models import LedgerEvent, VisitAnswer
from tests.phone.conftest import PhoneLive
from tests.phone.test_phone_browser import PHONE, _shot

TOKEN = re.compile(r'action="(/v/[0-9a-f]{32})" method="post" novalidate>\s*'
                   r'<input type="hidden" name="csrf_token" value="([0-9a-f]{64})">')
ACCOUNT = re.compile(r'action="(/v/[0-9a-f]{32}/account)" method="post" novalidate>\s*'
                     r'<input type="hidden" name="csrf_token" value="([0-9a-f]{64})">')


def _sale(phone: PhoneLive, store_id: str, kind: str = "earn") -> str:
    event_id = str(uuid7())
    now = phone.store.clock()

    def tx(conn: Any) -> None:
        conn.execute(phone.store.insert(LedgerEvent).values(
            member_id="M-1", event_id=event_id, terminal_id="T-1", store_id=store_id,
            terminal_seq=1, kind=kind, points=10, txn_ref="POS-1/1", terminal_time=now,
            received_at=now, offline=False, flags="", status="applied", reason="",
            review_note=""))

    phone.store.write(tx)
    return link_part(event_id)


class TestVisitQuestion:
    def test_answer_once_per_sale_and_nps_per_store(self, phone: PhoneLive) -> None:
        """A sale's link asks one question; the answer is kept (the latest), the page then
        thanks; answers make the NPS of each store."""
        phone.store.add_member("M-1", "Dana", card_id="C-1")
        links = [_sale(phone, "S-1"), _sale(phone, "S-1"), _sale(phone, "S-2")]
        for link, score in zip(links, ("10", "3", "9"), strict=True):
            page = httpx.get(f"{phone.url}/v/{link}")
            assert page.status_code == 200 and "Dana" not in page.text
            action, token = TOKEN.findall(page.text)[0]
            bad = httpx.post(phone.url + action, data={"csrf_token": token, "score": "x"})
            assert bad.status_code == 400 and 'href="#score"' in bad.text
            done = httpx.post(phone.url + action, data={"csrf_token": token, "score": score})
            assert done.status_code == 303
            shown = httpx.get(phone.url + done.headers["location"])
            assert f"You answered {score} out of 10" in shown.text
        now = phone.store.clock()
        figures = visits.store_nps(phone.store, now - timedelta(days=1), now + timedelta(1))
        assert [(f.store_id, f.answers, f.nps) for f in figures] == [("S-1", 2, 0),
                                                                      ("S-2", 1, 100)]

    def test_unknown_links_and_other_events(self, phone: PhoneLive) -> None:
        """A link of no sale (or of a non-earn event, or not hex) is a 404 page; a post
        with another link's token is refused."""
        phone.store.add_member("M-1", "Dana", card_id="C-1")
        adjust = _sale(phone, "S-1", kind="adjust")
        for link in (uuid7().hex, adjust, "nothex", "A" * 32):
            assert httpx.get(f"{phone.url}/v/{link}").status_code == 404, link
        one, two = _sale(phone, "S-1"), _sale(phone, "S-1")
        _action, token = TOKEN.findall(httpx.get(f"{phone.url}/v/{one}").text)[0]
        r = httpx.post(f"{phone.url}/v/{two}", data={"csrf_token": token, "score": "5"})
        assert r.status_code == 400

    def test_receipt_opens_the_account(self, phone: PhoneLive) -> None:
        """The receipt's link opens its member's account (30 days); not another's."""
        phone.store.add_member("M-1", "Dana", card_id="C-1")
        phone.store.adjust_points("M-1", 7, "welcome")
        link = _sale(phone, "S-1")
        with httpx.Client(base_url=phone.url) as http:
            action, token = ACCOUNT.findall(http.get(f"/v/{link}").text)[0]
            r = http.post(action, data={"csrf_token": token})
            assert r.status_code == 303 and r.headers["location"] == "/m/me"
            assert re.search(r'id="balance">7<', http.get("/m/me").text)
        with httpx.Client(base_url=phone.url) as http:
            assert http.post(action, data={"csrf_token": "0" * 64}).status_code == 400
            big = http.post(action, data={"csrf_token": token, "x": "y" * 5000})
            assert big.status_code == 413  # bounded like every phone form, not read
            assert http.get("/m/me").status_code == 303

    def test_odd_answers_get_a_400_and_a_control_character_is_dropped(
            self, phone: PhoneLive) -> None:
        """A score that is no number 0-10 (a superscript two passes isdigit() and fails
        int()) is a 400 form page, nothing kept; a NUL in the comment (which PostgreSQL
        refuses) is dropped, the answer kept."""
        phone.store.add_member("M-1", "Dana", card_id="C-1")
        link = _sale(phone, "S-1")
        action, token = TOKEN.findall(httpx.get(f"{phone.url}/v/{link}").text)[0]
        for score in ("\u00b2", "\u0663", "11", "-1", "010", " 5", ""):
            r = httpx.post(phone.url + action, data={"csrf_token": token, "score": score})
            assert r.status_code == 400 and 'href="#score"' in r.text, score
        now = phone.store.clock()
        assert visits.store_nps(phone.store, now - timedelta(days=1), now + timedelta(1)) == []
        done = httpx.post(phone.url + action, data={"csrf_token": token, "score": "9",
                                                    "comment": "quick\x00 and kind"})
        assert done.status_code == 303
        with phone.store.read() as conn:
            kept = conn.execute(select(VisitAnswer.score, VisitAnswer.comment)).all()
        assert [tuple(r) for r in kept] == [(9, "quick and kind")]


class TestVisitInBrowser:
    @pytest.mark.parametrize(("locale", "words"), [
        ("en-GB", {"title": "Your visit", "site": "Loyalty club", "send": "Send",
                   "error": "Choose a number from 0 to 10",
                   "done": "You answered 8 out of 10. Thank you."}),
        ("he-IL", {"title": "הביקור שלכם", "site": "מועדון הלקוחות", "send": "שליחה",
                   "error": "בחרו מספר מ-0 עד 10",
                   "done": "עניתם 8 מתוך 10. תודה."}),
    ])
    def test_answer_on_a_phone_without_javascript(self, browser: Any,
                                                  phone_sqlite: PhoneLive, locale: str,
                                                  words: dict[str, str]) -> None:
        """The receipt's page at 390 x 844 with scripts off, in English and Hebrew (right
        to left): fits the screen; Send without a score says what is missing; a score is
        kept and the page thanks, in the page's language."""
        phone = phone_sqlite
        phone.store.add_member("M-1", "Dana", card_id="C-1")
        link = _sale(phone, "S-1")
        ctx = browser.new_context(viewport=PHONE, locale=locale, java_script_enabled=False)
        page = ctx.new_page()
        page.set_default_timeout(5000)
        page.goto(f"{phone.url}/v/{link}")
        assert page.inner_text("h1") == words["title"]
        assert page.inner_text(".site-name") == words["site"]  # not "Product page"
        assert page.get_attribute("html", "dir") == ("rtl" if locale == "he-IL" else "ltr")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        _shot(page, f"visit-{locale}")
        page.click(f"button:has-text('{words['send']}')")
        assert words["error"] in page.inner_text("#score-error")
        assert page.locator(".error-summary a[href='#score']").count() == 1
        page.check("#score-8")
        page.fill("#comment", "friendly")
        page.click(f"button:has-text('{words['send']}')")
        assert page.inner_text("#visit-thanks") == words["done"]
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        _shot(page, f"visit-answered-{locale}")
        ctx.close()
