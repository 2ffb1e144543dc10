"""The member's own page over real HTTP: opened with the card number, nothing without it."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.conftest import REPO
from tests.phone.conftest import PhoneLive, member_card
from tests.phone.test_phone_pages import tap

TOKEN = re.compile(r'action="/m" method="post" novalidate>\s*'
                   r'<input type="hidden" name="csrf_token" value="([0-9a-f]{64})">')


def _sign_in(http: httpx.Client, card: str) -> httpx.Response:
    page = http.get("/m")
    token = TOKEN.search(page.text)
    assert token is not None
    return http.post("/m", data={"csrf_token": token.group(1), "card": card})


class TestMemberPage:
    def test_card_number_opens_the_page(self, phone: PhoneLive) -> None:
        """The right card number shows the member's balance and activity; signing out
        closes it; the page needs the session cookie."""
        phone.store.add_member("M-1", "Dana", card_id="C-1001")
        phone.store.adjust_points("M-1", 120, "welcome")
        with httpx.Client(base_url=phone.url) as http:
            assert http.get("/m/me").status_code == 303  # not signed in
            r = _sign_in(http, "c-1001")
            assert r.status_code == 303 and r.headers["location"] == "/m/me"
            assert "HttpOnly" in r.headers["set-cookie"]
            page = http.get("/m/me")
            assert re.search(r'id="balance">120<', page.text)
            assert "Correction" in page.text and "+120" in page.text
            hebrew = http.get("/m/me", headers={"Accept-Language": "he"})
            assert 'dir="rtl"' in hebrew.text and "חשבון המועדון שלכם" in hebrew.text
            assert "Dana" not in page.text  # no name needed on the page
            token = re.search(r'action="/m/logout" method="post" novalidate>\s*<input '
                              r'type="hidden" name="csrf_token" value="([0-9a-f]{64})"',
                              page.text)
            assert token is not None
            assert http.post("/m/logout", data={"csrf_token": token.group(1)}).status_code == 303
            assert http.get("/m/me").status_code == 303

    def test_wrong_numbers_are_refused_then_throttled(self, phone: PhoneLive) -> None:
        """A wrong or revoked card number opens nothing; ten wrong ones lock the client out
        for the window (429), even with the right number."""
        phone.store.add_member("M-1", "Dana", card_id="C-1001")
        phone.store.add_member("M-2", "Noa", card_id="C-1002")
        phone.store.set_card_status("C-1002", "revoked")
        with httpx.Client(base_url=phone.url) as http:
            r = _sign_in(http, "C-9999")
            assert r.status_code == 400 and "We do not know this card number" in r.text
            assert _sign_in(http, "C-1002").status_code == 400
            for _ in range(8):
                _sign_in(http, "C-0000")
            r = _sign_in(http, "C-1001")
            assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
            assert http.get("/m/me").status_code == 303

    def test_form_without_its_token_is_refused(self, phone: PhoneLive) -> None:
        phone.store.add_member("M-1", "Dana", card_id="C-1001")
        with httpx.Client(base_url=phone.url) as http:
            http.get("/m")
            r = http.post("/m", data={"csrf_token": "0" * 64, "card": "C-1001"})
            assert r.status_code == 400 and http.get("/m/me").status_code == 303

    def test_tapping_the_own_card_opens_the_page(self, phone: PhoneLive) -> None:
        """A fresh read of the member's NTAG 424 DNA card opens their page; the same URL
        again (a copy) does not; a card central does not know opens nothing."""
        phone.store.add_member("M-1", "Dana", card_id="C-1001")
        phone.store.adjust_points("M-1", 40, "welcome")
        card = member_card(bytes.fromhex("04DDEE00112201"), "C-1001")
        url = phone.local(tap(card))
        with httpx.Client(base_url=phone.url, follow_redirects=True) as http:
            page = http.get(url)
            assert page.url.path == "/m/me" and re.search(r'id="balance">40<', page.text)
        with httpx.Client(base_url=phone.url) as http:
            again = http.get(url)
            assert again.status_code == 400 and "This link was used before" in again.text
            assert http.get("/m/me").status_code == 303
            stranger = phone.local(tap(member_card(bytes.fromhex("04DDEE00112202"), "C-7")))
            assert http.get(stranger).status_code == 404
            forged = url[:-1] + ("0" if url[-1] != "0" else "1")
            assert http.get(forged).status_code == 400

    def test_points_about_to_expire_are_shown(self, phone: PhoneLive) -> None:
        """Under a chain program with rolling 12-month expiry, points earned 11 months and
        three weeks ago show as expiring within the warning period, with their last day."""
        from datetime import timedelta

        from sqlalchemy import update

        from pos_loyalty.rules.expiry import add_months
        from pos_loyalty.store.central_models import Balance, LedgerEvent

        phone.store.publish_program((REPO / "examples/programs/07-expiry.toml").read_text())
        phone.store.add_member("M-1", "Dana", card_id="C-1001")
        now = phone.store.clock()
        earned = now - timedelta(days=345)

        def rows(conn: Any) -> None:
            for i, (when, pts) in enumerate(((earned, 30), (now - timedelta(days=10), 20))):
                conn.execute(phone.store.insert(LedgerEvent).values(
                    member_id="M-1", event_id=f"00000000-0000-7000-8000-00000000000{i}",
                    terminal_id="T-1", store_id="S-1", terminal_seq=i + 1, kind="earn",
                    points=pts, txn_ref=f"X/{i}", terminal_time=when, received_at=when,
                    offline=False, flags="", status="applied", reason="", review_note=""))
            conn.execute(update(Balance).where(Balance.member_id == "M-1").values(balance=50))

        phone.store.write(rows)
        with httpx.Client(base_url=phone.url) as http:
            _sign_in(http, "C-1001")
            page = http.get("/m/me")
        expiring = re.search(r'id="expiring">([^<]+)<', page.text)
        assert expiring is not None
        last_day = add_months(earned.date(), 12)
        assert expiring.group(1).startswith("30 points expire on ")
        assert last_day.strftime("%b") in expiring.group(1) and str(last_day.year) in \
            expiring.group(1)

    def test_progress_to_the_next_reward(self, phone: PhoneLive) -> None:
        """Under a program with a reward catalogue, the page says how many points the
        cheapest reward not reached yet needs."""
        phone.store.publish_program((REPO / "examples/programs/14-non-monetary.toml")
                                    .read_text())
        phone.store.add_member("M-1", "Dana", card_id="C-1001")
        phone.store.adjust_points("M-1", 120, "welcome")
        with httpx.Client(base_url=phone.url) as http:
            _sign_in(http, "C-1001")
            page = http.get("/m/me").text
        assert re.search(r'id="next-reward">180 more points to: Sample box<', page)
