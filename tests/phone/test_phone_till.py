"""The till's side over real HTTP: tags linked to buyers, engagement points, coupons once."""

from __future__ import annotations

import re
import threading

import httpx
from sqlalchemy import select

from pos_loyalty.nfc.sim.type4 import Ntag424Dna
from pos_loyalty.server.phone import queries
from pos_loyalty.store.central_models import LedgerEvent
from tests.phone.conftest import PhoneLive, product_tag
from tests.phone.test_phone_member import _sign_in
from tests.phone.test_phone_pages import tap

UID = bytes.fromhex("04A1B2C3D4E5A0")


def _terminal(phone: PhoneLive, store_id: str = "S-1") -> dict[str, str]:
    _tid, code = phone.store.add_terminal(store_id)
    credential = phone.store.enroll(code).credential
    return {"Authorization": f"Bearer {credential}"}


def _coupon(phone: PhoneLive, tag: Ntag424Dna) -> str:
    page = httpx.get(phone.local(tap(tag)))
    found = re.search(r'id="coupon-code">([2-9A-Z]{10})<', page.text)
    assert found is not None
    return found.group(1)


class TestLinks:
    def test_first_link_wins_and_engagement_points_once(self, phone: PhoneLive) -> None:
        """A tag linked at the till to M-1: the first genuine phone tap earns M-1 the
        engagement points once (a ledger row of central, in the balance); a later link to
        another member is a conflict and changes nothing."""
        phone.store.add_member("M-1", "Dana", card_id="C-1")
        phone.store.add_member("M-2", "Noa", card_id="C-2")
        auth = _terminal(phone)
        link = {"uid": UID.hex().upper(), "sku": "KETTLE-2", "member_id": "M-1",
                "txn_ref": "POS-1/77"}
        r = httpx.post(phone.url + "/v1/phone/links", headers=auth, json={"links": [
            link, link, {**link, "member_id": "M-2"}, {**link, "member_id": "M-9",
                                                       "uid": "04000000000001"}]})
        assert r.status_code == 200
        assert r.json()["results"] == ["linked", "known", "conflict", "unknown_member"]
        tag = product_tag(UID)
        for _ in range(3):
            httpx.get(phone.local(tap(tag)))
        assert phone.store.balance("M-1") == 25 and phone.store.balance("M-2") == 0
        today = phone.store.clock().date()
        figures = queries.tap_figures(phone.store, today, today)
        assert [(f.store_id, f.taps, f.genuine) for f in figures] == [("S-1", 3, 3)]
        assert phone.store.ledger_sum("M-1") == 25
        with phone.store.read() as conn:
            rows = conn.execute(select(LedgerEvent.kind, LedgerEvent.terminal_id,
                                       LedgerEvent.store_id)
                                .where(LedgerEvent.member_id == "M-1")).all()
        assert [tuple(r) for r in rows] == [("earn", "central", "S-1")]
        with httpx.Client(base_url=phone.url) as http:
            assert _sign_in(http, "C-1").status_code == 303
            products = re.search(r'<ul id="products">(.*?)</ul>', http.get("/m/me").text,
                                 re.S)
        assert products is not None and "Kettle K2" in products.group(1)
        assert "registered" not in products.group(1)

    def test_links_need_a_terminal(self, phone: PhoneLive) -> None:
        r = httpx.post(phone.url + "/v1/phone/links", json={"links": []})
        assert r.status_code == 401
        r = httpx.post(phone.url + "/v1/phone/links", headers=_terminal(phone),
                       json={"links": [{"uid": "zz", "sku": "A", "member_id": "M",
                                       "txn_ref": "x"}]})
        assert r.status_code == 422


class TestCoupon:
    def test_redeemed_once_across_the_chain(self, phone: PhoneLive) -> None:
        """Two tills of two stores race with one code: one wins; the winner's retry gets the
        same answer; the loser and any later use get 409; the phone page then says used."""
        tag = product_tag(UID)
        code = _coupon(phone, tag)
        tills = [_terminal(phone, "S-1"), _terminal(phone, "S-2")]
        answers: dict[int, httpx.Response] = {}
        barrier = threading.Barrier(2)

        def one(i: int) -> None:
            barrier.wait()
            answers[i] = httpx.post(phone.url + "/v1/phone/coupons/redeem", headers=tills[i],
                                    json={"code": code, "txn_ref": f"POS-{i}/1"})

        threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        statuses = sorted(a.status_code for a in answers.values())
        assert statuses == [200, 409]
        winner = next(i for i, a in answers.items() if a.status_code == 200)
        assert answers[winner].json() == {"status": "redeemed", "percent": 10,
                                          "sku": "KETTLE-2"}
        retry = httpx.post(phone.url + "/v1/phone/coupons/redeem", headers=tills[winner],
                           json={"code": code, "txn_ref": f"POS-{winner}/1"})
        assert retry.status_code == 200
        again = httpx.post(phone.url + "/v1/phone/coupons/redeem", headers=tills[winner],
                           json={"code": code, "txn_ref": f"POS-{winner}/2"})
        assert again.status_code == 409 and again.json()["reason"] == "coupon already used"
        unknown = httpx.post(phone.url + "/v1/phone/coupons/redeem", headers=tills[0],
                             json={"code": "ABCDEFGHJK", "txn_ref": "POS-0/3"})
        assert unknown.status_code == 404
        page = httpx.get(phone.local(tap(tag)))
        assert "Genuine product" in page.text
        assert "This coupon has been used." in page.text and "coupon-code" not in page.text

    def test_other_product_and_offline_conflict(self, phone: PhoneLive) -> None:
        """A till naming its basket's products cannot use a coupon for another product (it
        stays free); an offline use of a used code is answered conflict with one review
        item however often it is pushed; a reference longer than central keeps is 422."""
        from pos_loyalty.server.review.queries import reconcile

        code = _coupon(phone, product_tag(UID))
        till = _terminal(phone)
        url = phone.url + "/v1/phone/coupons/redeem"
        other = httpx.post(url, headers=till, json={"code": code, "txn_ref": "POS-1/1",
                                                    "skus": ["MUG-1"]})
        assert other.status_code == 409
        assert other.json()["reason"] == "coupon for product KETTLE-2, which is not in this sale"
        used = httpx.post(url, headers=till, json={"code": code, "txn_ref": "POS-1/1",
                                                   "skus": ["MUG-1", "KETTLE-2"]})
        assert used.status_code == 200
        late = _terminal(phone, "S-2")
        for _ in range(2):
            answer = httpx.post(url, headers=late, json={"code": code, "txn_ref": "POS-7/3",
                                                         "offline": True})
            assert answer.status_code == 200
            assert answer.json() == {"status": "conflict", "percent": 10, "sku": "KETTLE-2",
                                     "reason": "coupon already used"}
        review = [r for r in reconcile(phone.store).review if r.kind == "coupon"]
        assert [(r.event_id, r.store_id) for r in review] == [(code, "S-2")]
        long_ref = httpx.post(url, headers=till, json={"code": code, "txn_ref": "x" * 65})
        assert long_ref.status_code == 422

    def test_release_only_by_the_sale_that_holds_it(self, phone: PhoneLive) -> None:
        """Only the terminal and sale that took a coupon can give it back; then anyone can
        use it; giving back again changes nothing."""
        code = _coupon(phone, product_tag(UID))
        till, other = _terminal(phone), _terminal(phone, "S-2")
        url = phone.url + "/v1/phone/coupons"
        assert httpx.post(url + "/redeem", headers=till,
                          json={"code": code, "txn_ref": "POS-1/1"}).status_code == 200
        for who, ref in ((other, "POS-1/1"), (till, "POS-1/2")):
            r = httpx.post(url + "/release", headers=who, json={"code": code, "txn_ref": ref})
            assert r.json() == {"status": "not_held"}
        assert httpx.post(url + "/redeem", headers=other,
                          json={"code": code, "txn_ref": "POS-9/1"}).status_code == 409
        r = httpx.post(url + "/release", headers=till, json={"code": code, "txn_ref": "POS-1/1"})
        assert r.json() == {"status": "released"}
        r = httpx.post(url + "/release", headers=till, json={"code": code, "txn_ref": "POS-1/1"})
        assert r.json() == {"status": "not_held"}
        assert httpx.post(url + "/redeem", headers=other,
                          json={"code": code, "txn_ref": "POS-9/1"}).status_code == 200
        assert httpx.post(url + "/release", json={"code": code,
                                                  "txn_ref": "x"}).status_code == 401
