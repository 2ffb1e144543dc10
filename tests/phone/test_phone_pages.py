"""The page a product tag opens, over real HTTP to a live server (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import select

from pos_loyalty.nfc.cardformat import Issuer, product_tag_uri
from pos_loyalty.nfc.sim.type4 import Ntag424Dna
from pos_loyalty.server.phone import queries
from pos_loyalty.store.central_models import PhoneCoupon, SunCounter
from tests.phone.conftest import ISSUER, SKU, PhoneLive, phone_config, product_tag, start

UID = bytes.fromhex("04A1B2C3D4E580")
ACTION = re.compile(r'action="(/p/[^"]+)" method="post" novalidate>\s*'
                    r'<input type="hidden" name="csrf_token" value="([0-9a-f]{64})">')


def tap(tag: Ntag424Dna) -> str:
    """One read of the tag's NDEF file, as a phone does: the URL it mirrors this time."""
    tag.activated()
    tag.file_read(b"\xe1\x04")
    url = tag.last_url
    assert url is not None
    return url


def forms(html: str) -> dict[str, tuple[str, str]]:
    return {action.rsplit("/", 1)[1]: (action, token) for action, token in ACTION.findall(html)}


class TestAuthenticity:
    def test_genuine_first_tap_then_replay(self, phone: PhoneLive) -> None:
        """A fresh SUN URL shows 'genuine' and a coupon; the same URL again says it was used
        before and shows neither coupon nor forms."""
        tag = product_tag(UID)
        url = phone.local(tap(tag))
        first = httpx.get(url)
        assert first.status_code == 200
        assert "Genuine product" in first.text and "Kettle K2" in first.text
        code = re.search(r'id="coupon-code">([2-9A-Z]{10})<', first.text)
        assert code is not None
        assert set(forms(first.text)) == {"warranty", "nps"}
        again = httpx.get(url)
        assert again.status_code == 200
        assert "This link was used before" in again.text and "Kettle K2" in again.text
        assert "coupon-code" not in again.text and "Genuine product" not in again.text
        assert forms(again.text) == {}
        with phone.store.read() as conn:
            assert conn.execute(select(SunCounter.counter).where(
                SunCounter.uid == UID.hex().upper())).scalar_one() == tag.counter

    def test_next_tap_shows_the_same_single_coupon(self, phone: PhoneLive) -> None:
        """Each fresh tap of one tag is genuine, but the tag has one coupon only."""
        tag = product_tag(UID)
        codes = set()
        for _ in range(3):
            page = httpx.get(phone.local(tap(tag)))
            assert "Genuine product" in page.text
            found = re.search(r'id="coupon-code">([2-9A-Z]{10})<', page.text)
            assert found is not None
            codes.add(found.group(1))
        assert len(codes) == 1
        with phone.store.read() as conn:
            assert len(conn.execute(select(PhoneCoupon)).all()) == 1

    def test_counter_already_seen_by_a_terminal_is_a_replay(self, phone: PhoneLive) -> None:
        """A URL whose counter a till already accepted (shared sun_counters) is used."""
        tag = product_tag(UID, counter=9)
        url = phone.local(tap(tag))  # counter 10
        phone.store.write(lambda conn: conn.execute(
            phone.store.insert(SunCounter).values(uid=UID.hex().upper(), counter=10,
                                                  terminal_id="T-1",
                                                  updated_at=phone.store.clock(),
                                                  change_xid=phone.store.stamp(conn))))
        page = httpx.get(url)
        assert "This link was used before" in page.text and "coupon-code" not in page.text

    def test_forged_and_tampered(self, phone: PhoneLive) -> None:
        """A changed MAC, a key the server does not have, or a tag of another product:
        the content, 'we could not verify this tag', no coupon, no forms."""
        url = phone.local(tap(product_tag(UID)))
        flipped = url[:-1] + ("0" if url[-1] != "0" else "1")
        other_keys = Ntag424Dna("https://shop.example/p/KETTLE-2", bytes(16), bytes(16),
                                uid=UID)
        other_product = product_tag(bytes.fromhex("04A1B2C3D4E581"), sku="TOASTER-1")
        moved = phone.local(tap(other_product)).replace("/p/TOASTER-1", f"/p/{SKU}")
        for bad in (flipped, phone.local(tap(other_keys)), moved):
            page = httpx.get(bad)
            assert page.status_code == 200, bad
            assert "We could not verify this tag" in page.text
            assert "Kettle K2" in page.text and "coupon-code" not in page.text
            assert forms(page.text) == {}
        # the genuine URL still works: failures recorded no counter
        assert "Genuine product" in httpx.get(url).text

    def test_signed_ntag21x_token(self, phone: PhoneLive) -> None:
        """`tag write`'s static signed URL: genuine, forms, but no coupon (a copy reads the
        same); a signature by another key or for another product is not verified."""
        uid = bytes.fromhex("04112233445566")
        good = product_tag_uri(SKU, uid, ISSUER, "https://shop.example")
        page = httpx.get(phone.local(good))
        assert "Genuine product" in page.text and "coupon-code" not in page.text
        assert set(forms(page.text)) == {"warranty", "nps"}
        stranger = product_tag_uri(SKU, uid, Issuer.generate(), "https://shop.example")
        other = product_tag_uri("TOASTER-1", uid, ISSUER, "https://shop.example")
        for bad in (phone.local(stranger),
                    phone.local(other).replace("/p/TOASTER-1", f"/p/{SKU}")):
            text = httpx.get(bad).text
            assert "We could not verify this tag" in text and forms(text) == {}

    def test_bad_requests_are_4xx(self, phone: PhoneLive) -> None:
        """Garbage in the path or query never reaches a 5xx."""
        for path in ("/p/not%20a%20sku", "/p/KETTLE-2?picc_data=zz&cmac=zz",
                     "/p/KETTLE-2?u=1&u=2&k=3&s=4", "/p/KETTLE-2?" + "a=1&" * 600,
                     "/p/KETTLE-2/t/nope", "/p/KETTLE-2/img/../../etc/passwd",
                     "/p/KETTLE-2/img/nothing.png"):
            r = httpx.get(phone.url + path)
            assert 200 <= r.status_code < 500, (path, r.status_code)
        r = httpx.post(phone.url + "/p/KETTLE-2/t/nope/nps", data={"score": "5"})
        assert 400 <= r.status_code < 500


class TestForms:
    def test_register_and_answer(self, phone: PhoneLive) -> None:
        """The customer registers the item and answers 0-10; both show on the visit page,
        the figures count them, and no personal data is shown back."""
        page = httpx.get(phone.local(tap(product_tag(UID))))
        action, token = forms(page.text)["warranty"]
        bad = httpx.post(phone.url + action, data={"csrf_token": token, "name": "",
                                                    "email": "nope", "purchased_on": "x"})
        assert bad.status_code == 400
        assert 'href="#name"' in bad.text and 'href="#email"' in bad.text
        assert 'value="nope"' in bad.text  # values kept
        ok = httpx.post(phone.url + action, data={"csrf_token": token, "name": "Dana",
                                                   "email": "dana@example.com",
                                                   "purchased_on": "2026-11-01"})
        assert ok.status_code == 303
        shown = httpx.get(phone.url + ok.headers["location"])
        assert "This product is registered." in shown.text
        assert "dana@example.com" not in shown.text and "Dana" not in shown.text
        action, token = forms(shown.text)["nps"]
        assert httpx.post(phone.url + action, data={"csrf_token": token,
                                                    "score": "11"}).status_code == 400
        done = httpx.post(phone.url + action, data={"csrf_token": token, "score": "9",
                                                     "comment": "great"})
        shown = httpx.get(phone.url + done.headers["location"])
        assert "You answered 9 out of 10" in shown.text
        figures = {f.sku: f for f in queries.product_figures(phone.store)}
        assert figures[SKU].registrations == 1 and figures[SKU].nps == 100
        assert figures[SKU].coupons_issued == 1 and figures[SKU].coupons_redeemed == 0
        today = phone.store.clock().date()
        taps = queries.tap_figures(phone.store, today - timedelta(days=1), today)
        assert [(t.sku, t.taps, t.genuine) for t in taps] == [(SKU, 1, 1)]

    def test_token_of_another_form_or_visit_is_refused(self, phone: PhoneLive) -> None:
        """The NPS form's token does not post the warranty form, nor another visit's."""
        one = forms(httpx.get(phone.local(tap(product_tag(UID)))).text)
        two = forms(httpx.get(phone.local(tap(product_tag(bytes.fromhex(
            "04A1B2C3D4E582"))))).text)
        r = httpx.post(phone.url + one["warranty"][0],
                       data={"csrf_token": one["nps"][1], "name": "x", "email": "a@b.cd"})
        assert r.status_code == 400
        r = httpx.post(phone.url + one["nps"][0], data={"csrf_token": two["nps"][1],
                                                        "score": "3"})
        assert r.status_code == 400


class TestLimitsAndLanguage:
    def test_hebrew(self, phone: PhoneLive) -> None:
        """Accept-Language he: the page is right to left, in Hebrew, with the Hebrew text."""
        page = httpx.get(phone.local(tap(product_tag(UID))),
                         headers={"Accept-Language": "he-IL,he;q=0.9,en;q=0.5"})
        assert 'lang="he" dir="rtl"' in page.text
        assert "מוצר מקורי" in page.text and "קומקום K2" in page.text

    def test_weight_and_headers(self, phone: PhoneLive) -> None:
        """Under 50 KB before images (page + stylesheet), no script, nothing from elsewhere."""
        page = httpx.get(phone.local(tap(product_tag(UID))))
        css = httpx.get(phone.url + "/static/web/web.css")
        assert len(page.content) + len(css.content) < 50_000
        assert "<script" not in page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert not re.search(r'(src|href)="(https?:)?//(?!video\.example|shop\.example)',
                             page.text)


class TestRateLimits:
    def test_per_tag_per_client_and_posts(self, tmp_path: Path, catalog_dir: Path) -> None:
        """Views of one tag, views from one client and form posts from one client are each
        capped per window: beyond, a 429 page with Retry-After, and no tap is recorded."""
        from pos_loyalty.migrations import upgrade_central

        url = f"sqlite:///{tmp_path / 'limits.db'}"
        upgrade_central(url)
        config = phone_config(catalog_dir, taps_per_tag=2, taps_per_client=4,
                              posts_per_client=1)
        for live in start(url, config):
            tag = product_tag(UID)
            assert httpx.get(live.local(tap(tag))).status_code == 200
            page = httpx.get(live.local(tap(tag)))
            assert page.status_code == 200
            third = httpx.get(live.local(tap(tag)))
            assert third.status_code == 429 and int(third.headers["retry-after"]) > 0
            assert "Too many requests" in third.text
            other = product_tag(bytes.fromhex("04A1B2C3D4E583"))
            assert httpx.get(live.local(tap(other))).status_code == 200  # 4th of the client
            assert httpx.get(live.local(tap(other))).status_code == 429  # client limit
            with live.store.read() as conn:
                counters = dict(conn.execute(select(SunCounter.uid, SunCounter.counter)).all())
            assert counters == {UID.hex().upper(): 2, "04A1B2C3D4E583": 1}
            action, token = forms(page.text)["nps"]
            assert httpx.post(live.url + action, data={"csrf_token": token,
                                                       "score": "5"}).status_code == 303
            assert httpx.post(live.url + action, data={"csrf_token": token,
                                                       "score": "6"}).status_code == 429
