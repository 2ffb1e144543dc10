"""The product page on a phone: real headless Chromium (Debian's, driven by Playwright) at
390 x 844 against a live server, with the URL read from an emulated NTAG 424 DNA by nfcpy over
its udp driver. Screenshots go to tests/.artifacts/phone/.

Skipped, saying why, where /usr/bin/chromium or Playwright is missing, unless
POS_LOYALTY_REQUIRE_BROWSER=1 (CI), where that is a failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from nfc_testkit import nfcpy_activate

from pos_loyalty.nfc.sim.emulator import TagEmulator
from pos_loyalty.nfc.sim.type4 import Ntag424Dna
from tests.conftest import REPO
from tests.phone.conftest import PhoneLive, phone_config, product_tag, start

ARTIFACTS = REPO / "tests" / ".artifacts" / "phone"
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def live(tmp_path: Path, catalog_dir: Path) -> Iterator[PhoneLive]:
    from pos_loyalty.migrations import upgrade_central

    url = f"sqlite:///{tmp_path / 'central.db'}"
    upgrade_central(url)
    yield from start(url, phone_config(catalog_dir))


@pytest.fixture(scope="module")
def rf() -> Iterator[TagEmulator]:
    with TagEmulator() as emulator:
        yield emulator


def read_url(rf: TagEmulator, tag: Ntag424Dna) -> str:
    """Tap the emulated tag on an nfcpy reader and read the URL its NDEF file holds now."""
    url = nfcpy_activate(rf, tag, lambda t: str(t.ndef.records[0].iri))
    assert isinstance(url, str)
    return url


def _shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000
    return path


class TestPhone:
    def test_tap_register_answer_and_replay(self, browser: Any, live: PhoneLive,
                                            rf: TagEmulator) -> None:
        """Genuine first tap: product, 'genuine', coupon; the customer registers the item
        and answers 0-10; the same URL opened again shows no coupon."""
        tag = product_tag(bytes.fromhex("04C0FFEE000001"))
        url = live.local(read_url(rf, tag))
        ctx = browser.new_context(viewport=PHONE, locale="en-GB")
        page = ctx.new_page()
        page.set_default_timeout(5000)
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        page.goto(url)
        assert page.inner_text("h1") == "Kettle K2, 1.7 l"
        assert page.inner_text("#authenticity") == "Genuine product"
        code = page.inner_text("#coupon-code")
        assert len(code) == 10
        assert page.locator(".product-image").evaluate("i => i.naturalWidth") > 0
        # nothing wider than the phone: no sideways scrolling
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        _shot(page, "genuine-en")
        page.fill("#name", "Dana Levi")
        page.fill("#email", "dana@example.com")
        page.click("button:has-text('Register')")
        assert "Thank you: your product is registered." in page.inner_text("[role=status]")
        assert page.inner_text("#registered") == "This product is registered."
        page.click("label[for=score-9]")
        page.fill("#comment", "Boils fast")
        page.click("button:has-text('Send')")
        assert page.inner_text("#nps-thanks") == "You answered 9 out of 10. Thank you."
        assert page.inner_text("#coupon-code") == code  # the visit still has its coupon
        _shot(page, "answered-en")
        page.goto(url)
        assert "This link was used before" in page.inner_text("#authenticity")
        assert page.locator("#coupon-code").count() == 0
        assert page.locator("form").count() == 0
        assert page.inner_text("h1") == "Kettle K2, 1.7 l"  # the content is still there
        _shot(page, "replayed-en")
        # a till uses the coupon (central's redeem endpoint), a second use is refused, and
        # the next fresh tap of the tag says the coupon was used
        _tid, enroll_code = live.store.add_terminal("S-1")
        auth = {"Authorization": f"Bearer {live.store.enroll(enroll_code).credential}"}
        first = httpx.post(f"{live.url}/v1/phone/coupons/redeem", headers=auth,
                           json={"code": code, "txn_ref": "POS-1/1"})
        second = httpx.post(f"{live.url}/v1/phone/coupons/redeem", headers=auth,
                            json={"code": code, "txn_ref": "POS-1/2"})
        assert first.status_code == 200 and second.status_code == 409
        page.goto(live.local(read_url(rf, tag)))
        assert page.inner_text("#authenticity") == "Genuine product"
        assert page.inner_text("#coupon").endswith("This coupon has been used.")
        assert page.locator("#coupon-code").count() == 0
        assert all(r.startswith(live.url) for r in requested), requested
        ctx.close()

    def test_hebrew_right_to_left(self, browser: Any, live: PhoneLive,
                                  rf: TagEmulator) -> None:
        """A Hebrew phone gets the page in Hebrew, right to left, and can answer."""
        tag = product_tag(bytes.fromhex("04C0FFEE000002"))
        ctx = browser.new_context(viewport=PHONE, locale="he-IL")
        page = ctx.new_page()
        page.set_default_timeout(5000)
        page.goto(live.local(read_url(rf, tag)))
        assert page.get_attribute("html", "dir") == "rtl"
        assert page.inner_text("#authenticity") == "מוצר מקורי"
        assert page.inner_text("h1").startswith("קומקום K2")
        assert page.locator("#coupon-code").count() == 1
        # right to left: the 0 of the scale sits right of the 10
        zero = page.locator("label[for=score]").bounding_box()
        one = page.locator("label[for=score-1]").bounding_box()
        assert zero is not None and one is not None and zero["x"] > one["x"]
        page.click("label[for=score-3]")
        page.click("button:has-text('שליחה')")
        assert "עניתם 3 מתוך 10" in page.inner_text("#nps-thanks")
        _shot(page, "genuine-he")
        ctx.close()
