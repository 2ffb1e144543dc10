"""A product tag's reorder coupon at the till: confirmed with central, used once chain-wide.

Live central over HTTP; the online cases run the terminal daemon with the reference till
over a real pty; the offline case drives the same TerminalService with central out of
reach, then syncs it with central back.
"""

from __future__ import annotations

import re
import socket
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import event, select

from pos_loyalty.config import PhoneTill
from pos_loyalty.migrations import upgrade_terminal
from pos_loyalty.pos.messages import (
    BasketItem,
    BasketUpdate,
    CouponPresent,
    TxnCommit,
    TxnStatusRequest,
    TxnVoid,
)
from pos_loyalty.server.review.queries import reconcile
from pos_loyalty.store import LocalStore
from pos_loyalty.store import phone as phone_store
from pos_loyalty.store.central_models import PhoneCoupon
from pos_loyalty.sync.client import SyncClient, run_sync
from pos_loyalty.terminal.service import TerminalService
from tests.phone.conftest import PhoneLive, product_tag
from tests.phone.test_phone_pages import tap
from tests.terminal.tagshop import KETTLE, Shop, open_shop

MUG = {"sku": "MUG-1", "qty": 2, "unit_price": 1200, "category": "kitchen"}


def coupon_from_phone(central: PhoneLive, uid: str) -> str:
    """The customer's genuine first tap of a product tag: the page's coupon code."""
    page = httpx.get(central.local(tap(product_tag(bytes.fromhex(uid)))))
    found = re.search(r'id="coupon-code">([2-9A-Z]{10})<', page.text)
    assert found is not None, page.text
    return found.group(1)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def enrolled(central: PhoneLive, tmp_path: Path, name: str, store_id: str = "S-1", *,
             reachable: bool = True) -> tuple[LocalStore, str]:
    """A terminal store enrolled with central: (the store, its credential). Not
    ``reachable``: it keeps central's address as a closed port (central out of reach)."""
    url = f"sqlite:///{tmp_path / f'{name}.db'}"
    upgrade_terminal(url)
    store = LocalStore(url)
    _tid, enroll = central.store.add_terminal(store_id)
    with SyncClient(central.url) as anon:
        answer = anon.enroll(enroll)
    store.set_enrollment(
        server_url=central.url if reachable else f"http://127.0.0.1:{closed_port()}",
        terminal_id=answer["terminal_id"], store_id=store_id,
        credential=answer["credential"])
    return store, str(answer["credential"])


class TestOnline:
    def test_used_once_then_refused_at_another_till(self, phone_central: PhoneLive,
                                                    shop: Shop, tmp_path: Path) -> None:
        """The reference till presents the code: the quote shows the coupon line and the
        lower total, central marks it used for that sale; presenting it again on the same
        sale changes nothing; a till of another store is refused with the reason."""
        central = phone_central
        code = coupon_from_phone(central, "04AA000000C001")
        shop.tap_member("C-1")
        before = shop.till.send_basket("T-1", [KETTLE, MUG], member_id="M-1")
        quoted = shop.till.present_coupon("T-1", code)
        assert quoted["type"] == "quote", quoted
        line = [x for x in quoted["lines"] if x["kind"] == "discount"]
        assert line == [{"program": line[0]["program"], "kind": "discount", "value": 499,
                         "text": f"coupon {code}: 10% off one KETTLE-2: -4.99"}]
        assert quoted["total_due"] == before["total_due"] - 499
        assert shop.till.present_coupon("T-1", code)["total_due"] == quoted["total_due"]
        awarded = shop.till.commit("T-1")
        assert awarded["type"] == "points.awarded"
        with central.store.read() as conn:
            used = conn.execute(select(PhoneCoupon.redeemed_txn)
                                .where(PhoneCoupon.code == code)).scalar_one()
        assert used == "POS-1/T-1"

        with open_shop(central, tmp_path, store_id="S-2", pos_id="POS-2") as other:
            other.till.send_basket("T-1", [KETTLE], member_id=None)
            refused = other.till.present_coupon("T-1", code)
        assert refused["type"] == "error" and refused["code"] == "refused"
        assert refused["message"] == f"coupon {code} refused: coupon already used"

    def test_coupon_for_a_product_not_in_the_sale(self, phone_central: PhoneLive,
                                                  shop: Shop) -> None:
        """A coupon for a product the basket lacks is refused and stays unused."""
        central = phone_central
        code = coupon_from_phone(central, "04AA000000C002")
        shop.till.send_basket("T-2", [MUG], member_id=None)
        refused = shop.till.present_coupon("T-2", code)
        assert refused["type"] == "error"
        assert "coupon for product KETTLE-2, which is not in this sale" in refused["message"]
        with central.store.read() as conn:
            assert conn.execute(select(PhoneCoupon.redeemed_at)
                                .where(PhoneCoupon.code == code)).scalar_one() is None


class TestOffline:
    def test_taken_within_bounds_then_reported_as_conflict(self, phone_central: PhoneLive,
                                                           tmp_path: Path) -> None:
        """Central out of reach: a well-formed code is taken offline (percent off the dearest
        unit, capped) up to the daily count, then refused saying why; back online, the sync
        round pushes the committed one: central, which saw the code used at another till
        meanwhile, answers conflict and keeps a review item; nothing is pushed twice."""
        central = phone_central
        code = coupon_from_phone(central, "04AA000000C003")
        store, cred = enrolled(central, tmp_path, "offline", "S-3", reachable=False)
        service = TerminalService(store, clock=lambda: datetime(2026, 11, 30, 10, 0),
                                  phone=PhoneTill(offline_coupons_per_day=1,
                                                  offline_coupon_percent=10,
                                                  offline_coupon_max=300))
        try:
            lines = (BasketItem("KETTLE-2", 1, 4990, "kitchen"),
                     BasketItem("MUG-1", 2, 1200, "kitchen"))
            plain = service.on_message(BasketUpdate("POS-3", "T-1", lines, None))
            got = service.on_message(CouponPresent("POS-3", "T-1", code))
            assert got is not None and got.TYPE == "quote", got
            assert [x.text for x in got.lines] == [  # type: ignore[union-attr]
                f"coupon {code}: 10% off one KETTLE-2: -3.00"]  # 4.99 capped at 3.00
            assert got.total_due == plain.total_due - 300  # type: ignore[union-attr]
            service.on_message(BasketUpdate("POS-3", "T-2", lines, None))
            second = service.on_message(CouponPresent("POS-3", "T-2", "ABCDEFGHJK"))
            assert second is not None and second.TYPE == "error"
            assert "took its 1 coupons without central today" in second.message  # type: ignore[union-attr]
            assert service.on_message(TxnCommit("POS-3", "T-1")).TYPE == "points.awarded"  # type: ignore[union-attr]

            # meanwhile the same code is used online at another till
            _t2, enroll2 = central.store.add_terminal("S-1")
            with SyncClient(central.url) as anon:
                other = anon.enroll(enroll2)
            with SyncClient(central.url, other["credential"]) as client:
                client.redeem_coupon({"code": code, "txn_ref": "POS-9/T-9"})

            with SyncClient(central.url, cred) as client:
                report = run_sync(store, client)
                again = run_sync(store, client)
            assert report.conflicts == 1 and again.conflicts == 0
            assert f"coupon {code} accepted offline in POS-3/T-1: coupon already used" \
                in report.problems[0]
            assert phone_store.coupon(store.engine, code).status == "conflict"  # type: ignore[union-attr]
            review = [r for r in reconcile(central.store).review if r.kind == "coupon"]
            assert len(review) == 1 and review[0].event_id == code
            assert '"first_use": {"terminal_id": "' in review[0].detail
        finally:
            service.coupons.close()
            store.close()

    def test_offline_coupon_redeemed_when_still_free(self, phone_central: PhoneLive,
                                                     tmp_path: Path) -> None:
        """An offline coupon nobody used elsewhere is redeemed by the push, not a conflict;
        one on a sale never committed is not pushed at all."""
        central = phone_central
        code = coupon_from_phone(central, "04AA000000C004")
        store, cred = enrolled(central, tmp_path, "offline", "S-3", reachable=False)
        service = TerminalService(store, clock=lambda: datetime(2026, 11, 30, 10, 0))
        try:
            lines = (BasketItem("KETTLE-2", 1, 4990, "kitchen"),)
            service.on_message(BasketUpdate("POS-3", "T-1", lines, None))
            service.on_message(CouponPresent("POS-3", "T-1", code))
            service.on_message(BasketUpdate("POS-3", "T-2", lines, None))
            service.on_message(CouponPresent("POS-3", "T-2", "ABCDEFGHJK"))  # never paid
            with SyncClient(central.url, cred) as client:
                report = run_sync(store, client)
            assert report.conflicts == 0  # T-1 not committed yet: nothing pushed
            service.on_message(TxnCommit("POS-3", "T-1"))
            with SyncClient(central.url, cred) as client:
                report = run_sync(store, client)
            assert report.conflicts == 0
            assert phone_store.coupon(store.engine, code).status == "redeemed"  # type: ignore[union-attr]
            assert phone_store.coupon(store.engine, "ABCDEFGHJK").status == "pending"  # type: ignore[union-attr]
            with central.store.read() as conn:
                assert conn.execute(select(PhoneCoupon.redeemed_txn)
                                    .where(PhoneCoupon.code == code)).scalar_one() == "POS-3/T-1"
        finally:
            service.coupons.close()
            store.close()


class TestNotConnected:
    def test_refused_without_central_and_the_sale_reads_no_coupons(self,
                                                                   tmp_path: Path) -> None:
        """A terminal never enrolled refuses a coupon saying why; that sale's later quotes
        and its commit read no coupons (a sale holding none costs the till nothing)."""
        url = f"sqlite:///{tmp_path / 'alone.db'}"
        upgrade_terminal(url)
        store = LocalStore(url)
        service = TerminalService(store, clock=lambda: datetime(2026, 11, 30, 10, 0))
        lines = (BasketItem("KETTLE-2", 1, 4990, "kitchen"),)
        reads: list[str] = []
        try:
            service.on_message(BasketUpdate("POS-1", "T-1", lines, None))
            got = service.on_message(CouponPresent("POS-1", "T-1", "ABCDEFGHJK"))
            assert got is not None and got.TYPE == "error"
            assert "not connected to central" in got.to_dict()["message"]
            event.listen(store.engine, "before_cursor_execute",
                         lambda *a: reads.append(a[2]) if "tag_coupons" in a[2] else None)
            quoted = service.on_message(BasketUpdate("POS-1", "T-1", lines, None))
            assert quoted is not None and quoted.TYPE == "quote"
            assert service.on_message(TxnCommit("POS-1", "T-1")).TYPE == "points.awarded"  # type: ignore[union-attr]
            assert reads == []
        finally:
            service.coupons.close()
            store.close()


class TestConfig:
    def test_phone_section_read_and_errors_named(self, tmp_path: Path) -> None:
        """[phone] sets the visit link base and the offline bounds; a plain-HTTP link or a
        bound out of range names file, line and key."""
        from pos_loyalty.config import load_config
        from pos_loyalty.errors import ConfigError

        path = tmp_path / "terminal.toml"
        path.write_text('[phone]\nvisit_url = "https://shop.example/v/"\n'
                        "offline_coupons_per_day = 0\noffline_coupon_max = 500\n")
        assert load_config(path).phone == PhoneTill("https://shop.example/v/", 0, 10, 500)
        for text, key, line in (
                ('[phone]\nvisit_url = "http://shop.example/v/"\n', "phone.visit_url", 2),
                ("[phone]\n\noffline_coupon_percent = 101\n", "phone.offline_coupon_percent",
                 3),
                ('[phone]\noffline_coupons_per_day = "5"\n', "phone.offline_coupons_per_day",
                 2),
                ("[phone]\nvisit = 1\n", "phone.visit", 2)):
            path.write_text(text)
            with pytest.raises(ConfigError) as info:
                load_config(path)
            assert (info.value.key, info.value.line) == (key, line), text
            assert str(info.value).startswith(f"{path}:{line}: key '{key}'")


class TestRestart:
    def test_open_sale_keeps_its_coupon_across_a_restart(self, phone_central: PhoneLive,
                                                         tmp_path: Path) -> None:
        """A sale quoted with a confirmed coupon, then the terminal restarts: the sale is
        still open with the same total, its commit keeps the discount, and the coupon is
        not asked of central again (it stays this sale's)."""
        central = phone_central
        code = coupon_from_phone(central, "04AA000000C005")
        store, _cred = enrolled(central, tmp_path, "restart")
        lines = (BasketItem("KETTLE-2", 1, 4990, "kitchen"),)
        first = TerminalService(store, clock=lambda: datetime(2026, 11, 30, 10, 0))
        try:
            first.on_message(BasketUpdate("POS-1", "T-1", lines, None))
            quoted = first.on_message(CouponPresent("POS-1", "T-1", code))
            assert quoted is not None and quoted.TYPE == "quote"
        finally:
            first.coupons.close()
        again = TerminalService(store, clock=lambda: datetime(2026, 11, 30, 10, 1))
        try:
            status = again.on_message(TxnStatusRequest("POS-1", "T-1"))
            assert status is not None and status.to_dict()["state"] == "open"
            requoted = again.on_message(BasketUpdate("POS-1", "T-1", lines, None))
            assert requoted is not None
            assert requoted.to_dict()["total_due"] == quoted.to_dict()["total_due"] == 4491
            assert again.on_message(TxnCommit("POS-1", "T-1")).TYPE == "points.awarded"  # type: ignore[union-attr]
        finally:
            again.coupons.close()
            store.close()
        with central.store.read() as conn:
            assert conn.execute(select(PhoneCoupon.redeemed_txn)
                                .where(PhoneCoupon.code == code)).scalar_one() == "POS-1/T-1"


def held_by(central: PhoneLive, code: str) -> str | None:
    with central.store.read() as conn:
        got = conn.execute(select(PhoneCoupon.redeemed_txn)
                           .where(PhoneCoupon.code == code)).scalar_one()
    return None if got is None else str(got)


class TestGivenBack:
    KETTLE = (BasketItem("KETTLE-2", 1, 4990, "kitchen"),)
    MUG = (BasketItem("MUG-1", 1, 1200, "kitchen"),)

    def test_void_and_unused_coupons_are_given_back(self, phone_central: PhoneLive,
                                                    tmp_path: Path) -> None:
        """A voided sale gives its coupon back to central at once, and the code then works
        in another sale; a sale committed after its product was taken off the basket gives
        its coupon back too; a used one stays used."""
        central = phone_central
        code = coupon_from_phone(central, "04AA000000C006")
        store, _cred = enrolled(central, tmp_path, "t")
        service = TerminalService(store, clock=lambda: datetime(2026, 11, 30, 10, 0))
        try:
            service.on_message(BasketUpdate("POS-1", "T-1", self.KETTLE, None))
            service.on_message(CouponPresent("POS-1", "T-1", code))
            assert held_by(central, code) == "POS-1/T-1"
            service.on_message(TxnVoid("POS-1", "T-1"))
            assert held_by(central, code) is None
            assert phone_store.coupon(store.engine, code) is None

            service.on_message(BasketUpdate("POS-1", "T-2", self.KETTLE, None))
            assert service.on_message(CouponPresent("POS-1", "T-2", code)).TYPE == "quote"  # type: ignore[union-attr]
            service.on_message(BasketUpdate("POS-1", "T-2", self.MUG, None))  # kettle off
            service.on_message(TxnCommit("POS-1", "T-2"))
            assert held_by(central, code) is None

            service.on_message(BasketUpdate("POS-1", "T-3", self.KETTLE, None))
            service.on_message(CouponPresent("POS-1", "T-3", code))
            service.on_message(TxnCommit("POS-1", "T-3"))
            assert held_by(central, code) == "POS-1/T-3"
            assert phone_store.coupon(store.engine, code).status == "confirmed"  # type: ignore[union-attr]
        finally:
            service.coupons.close()
            store.close()

    def test_give_back_waits_for_central(self, phone_central: PhoneLive,
                                         tmp_path: Path) -> None:
        """A void while central is out of reach keeps the coupon marked to give back; the
        next sync round gives it back; an offline coupon of a voided sale is never sent."""
        central = phone_central
        code = coupon_from_phone(central, "04AA000000C007")
        store, cred = enrolled(central, tmp_path, "t")
        ident = store.sync_identity()
        service = TerminalService(store, clock=lambda: datetime(2026, 11, 30, 10, 0))
        try:
            service.on_message(BasketUpdate("POS-1", "T-1", self.KETTLE, None))
            service.on_message(CouponPresent("POS-1", "T-1", code))
            store.set_enrollment(server_url=f"http://127.0.0.1:{closed_port()}",
                                 terminal_id=ident.terminal_id, store_id="S-1",
                                 credential=cred)
            service.on_message(BasketUpdate("POS-1", "T-2", self.KETTLE, None))
            service.on_message(CouponPresent("POS-1", "T-2", "ABCDEFGHJK"))  # offline
            service.on_message(TxnVoid("POS-1", "T-1"))
            service.on_message(TxnVoid("POS-1", "T-2"))
            assert phone_store.coupon(store.engine, code).status == "releasing"  # type: ignore[union-attr]
            assert phone_store.coupon(store.engine, "ABCDEFGHJK") is None
            assert held_by(central, code) == "POS-1/T-1"
            with SyncClient(central.url, cred) as client:
                report = run_sync(store, client)
            assert report.ok and report.conflicts == 0
            assert held_by(central, code) is None
            assert phone_store.coupon(store.engine, code) is None
        finally:
            service.coupons.close()
            store.close()
