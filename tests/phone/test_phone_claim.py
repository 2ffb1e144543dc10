"""A card-first (anonymous) card's holder claims it on the member's page.

Headless Chromium (Debian's, driven by Playwright) at 390 x 844, English and Hebrew, against a
live central; plus plain HTTP for what a browser does not show (CSRF, a second claim).
Screenshots go to tests/.artifacts/phone/. Skipped, saying why, without Chromium or
Playwright (a failure with POS_LOYALTY_REQUIRE_BROWSER=1).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pos_loyalty.migrations import upgrade_central
from tests.phone.conftest import PhoneLive, phone_config, start
from tests.phone.test_phone_browser import PHONE, _shot
from tests.phone.test_phone_member import _sign_in

CLAIM = re.compile(r'action="/m/claim" method="post" novalidate>\s*'
                   r'<input type="hidden" name="csrf_token" value="([0-9a-f]{64})">')


@pytest.fixture
def live(tmp_path: Path, catalog_dir: Path) -> Iterator[PhoneLive]:
    url = f"sqlite:///{tmp_path / 'central.db'}"
    upgrade_central(url)
    yield from start(url, phone_config(catalog_dir))


def open_account(page: Any, live: PhoneLive, card: str) -> None:
    page.goto(live.url + "/m")
    page.fill("#card", card)
    page.click("button[type=submit]")


class TestClaimInBrowser:
    @pytest.mark.parametrize(("locale", "words"), [
        ("en-GB", {"claim": "Make this card yours", "button": "Make it mine",
                   "done": "Thank you: this card is now yours.",
                   "name_error": "Enter your name"}),
        ("he-IL", {"claim": "הפכו את הכרטיס לשלכם", "button": "הכרטיס שלי",
                   "done": "תודה: הכרטיס הזה שלכם עכשיו.",
                   "name_error": "הזינו את שמכם"}),
    ])
    def test_holder_claims_a_blank_card(self, browser: Any, live: PhoneLive, locale: str,
                                        words: dict[str, str]) -> None:
        """Signed in with the card's number, the holder of a blank card sees the claim
        form; without a name and consent it says what is missing (values kept); with them
        the card is theirs (name, e-mail, consent at central) and the form is gone."""
        live.store.add_member("M-7", "", card_id="C-7007", anonymous=True)
        ctx = browser.new_context(viewport=PHONE, locale=locale, java_script_enabled=False)
        page = ctx.new_page()
        page.set_default_timeout(5000)
        open_account(page, live, "C-7007")
        assert page.inner_text("#claim-title") == words["claim"]
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        _shot(page, f"claim-{locale}")
        page.fill("#email", "dana@example.com")
        page.click(f"button:has-text('{words['button']}')")
        assert words["name_error"] in page.inner_text("#name-error")
        assert page.locator(".error-summary a[href='#consent']").count() == 1
        assert page.input_value("#email") == "dana@example.com"
        page.fill("#name", "Dana Levi")
        page.check("#consent")
        page.click(f"button:has-text('{words['button']}')")
        assert page.inner_text("[role=status]") == words["done"]
        assert page.locator("#claim").count() == 0
        _shot(page, f"claimed-{locale}")
        ctx.close()
        member = live.store.get_member("M-7")
        assert (member.display_name, member.email, member.anonymous) == (
            "Dana Levi", "dana@example.com", False)


class TestClaimRules:
    def test_only_blank_cards_once_and_with_the_form_token(self, live: PhoneLive) -> None:
        """A named member sees no claim form and cannot post one; a claim needs the
        session's form token; a blank card is claimed once (a second post changes
        nothing); without a session the post goes back to sign-in."""
        live.store.add_member("M-1", "Noa", card_id="C-1001")
        live.store.add_member("M-7", "", card_id="C-7007", anonymous=True)
        with httpx.Client(base_url=live.url) as http:
            _sign_in(http, "C-1001")
            me = http.get("/m/me").text
            assert 'id="claim"' not in me
            token = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', me)
            assert token is not None  # the sign-out form's: not valid for a claim
            refused = http.post("/m/claim", data={"name": "X", "consent": "yes",
                                                  "csrf_token": token.group(1)})
            assert refused.status_code == 400
        with httpx.Client(base_url=live.url) as http:
            assert http.post("/m/claim", data={"name": "X"}).headers["location"] == "/m"
            _sign_in(http, "C-7007")
            found = CLAIM.search(http.get("/m/me").text)
            assert found is not None
            form = {"name": "Dana", "consent": "yes"}
            assert http.post("/m/claim", data={**form, "csrf_token": "0" * 64}
                             ).status_code == 400
            ok = http.post("/m/claim", data={**form, "csrf_token": found.group(1)})
            assert ok.status_code == 303
            again = http.post("/m/claim", data={"name": "Someone else", "consent": "yes",
                                                "csrf_token": found.group(1)})
            assert again.status_code == 409
        assert live.store.get_member("M-7").display_name == "Dana"


class TestClaimInput:
    def test_long_name_and_control_characters_are_kept_as_can_be(
            self, phone: PhoneLive) -> None:
        """Over SQLite and PostgreSQL: a 200-character name whose lower case is longer (the
        search key's column is 200) claims the card; a NUL (PostgreSQL refuses one) is
        dropped from the name and the e-mail, never a 5xx."""
        name = "\u0130" * 200
        assert len(name.lower()) > 200
        for member, card, sent, kept in (
                ("M-7", "C-7007", {"name": name}, (name, "")),
                ("M-8", "C-8008", {"name": "Da\x00na", "email": "d\x00@example.com"},
                 ("Dana", "d@example.com"))):
            phone.store.add_member(member, "", card_id=card, anonymous=True)
            with httpx.Client(base_url=phone.url) as http:
                _sign_in(http, card)
                found = CLAIM.search(http.get("/m/me").text)
                assert found is not None
                r = http.post("/m/claim", data={**sent, "consent": "yes",
                                                "csrf_token": found.group(1)})
                assert r.status_code == 303, r.text
            got = phone.store.get_member(member)
            assert (got.display_name, got.email, got.anonymous) == (*kept, False)
