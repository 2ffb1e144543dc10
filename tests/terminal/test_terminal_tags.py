"""A product tag tapped at the till links the item to its buyer, end to end.

Nothing mocked: the emulated NTAG 424 DNA and member card answer nfcpy's reader over its udp
driver, the terminal daemon and the reference till talk protocol v1 over a real pty pair,
central is a live uvicorn server reached over HTTP, and the customer's phone reads the tag
with nfcpy too (a second emulator) before opening its URL on central.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import httpx
from nfc_testkit import nfcpy_activate
from sqlalchemy import select

from pos_loyalty.migrations import upgrade_terminal
from pos_loyalty.nfc.events import TapEvent
from pos_loyalty.nfc.sim.cards import member_card
from pos_loyalty.nfc.sim.emulator import TagEmulator
from pos_loyalty.nfc.sim.type4 import Ntag424Dna
from pos_loyalty.pos.messages import BasketItem, BasketUpdate, ProductTapped
from pos_loyalty.server.phone import visits
from pos_loyalty.store import LocalStore
from pos_loyalty.store.central_models import PhoneTagLink
from pos_loyalty.sync.client import SyncClient, run_sync
from pos_loyalty.terminal.service import TerminalService
from pos_loyalty.terminal.session import TillSession
from pos_loyalty.terminal.tags import TagDesk, product_sku, sale_for_tag
from tests.phone.conftest import (
    TAG_BASE,
    PhoneLive,
    product_tag,
)
from tests.storerows import tag_links
from tests.terminal.tagshop import KETTLE, Shop


def phone_reads(tag: Ntag424Dna) -> str:
    """The customer's phone reads the tag (nfcpy on an emulator of its own): the URL now."""
    with TagEmulator() as phone_rf:
        url = nfcpy_activate(phone_rf, tag, lambda t: str(t.ndef.records[0].iri))
    assert isinstance(url, str)
    return url


class TestLinkAtTheTill:
    def test_link_then_phone_tap_earns_points_at_the_terminal(self, shop: Shop) -> None:
        """A member's sale, the product tag tapped: product.tapped names the member and the
        sale; after a sync round central has the link; the buyer's genuine phone tap on the
        tag's URL earns the points for engaging, and the next round's pulled balance at the
        terminal includes them."""
        ident = shop.tap(member_card("C-1"))
        assert (ident["type"], ident["member_id"], ident["balance"]) == (
            "member.identified", "M-1", 0)
        quote = shop.till.send_basket("T-1", [KETTLE], member_id="M-1")
        assert quote["type"] == "quote" and quote["points_total"] == 49
        tag = product_tag(bytes.fromhex("04AB12CD34EF56"))
        tapped = shop.tap(tag)
        assert tapped == {"type": "product.tapped", "uid": "04AB12CD34EF56",
                          "sku": "KETTLE-2", "linked": True, "member_id": "M-1",
                          "pos_id": "POS-1", "txn_id": "T-1",
                          "text": "product KETTLE-2 registered to Dana Levi"}
        awarded = shop.till.commit("T-1")
        assert (awarded["points"], awarded["balance_after"]) == (49, 49)
        assert tag_links(shop.daemon.store.engine) == [
            ("04AB12CD34EF56", "M-1", "pending")]  # kept before central heard of it

        shop.sync()
        assert tag_links(shop.daemon.store.engine) == [
            ("04AB12CD34EF56", "M-1", "linked")]
        with shop.central.store.read() as conn:
            link = conn.execute(select(PhoneTagLink.member_id, PhoneTagLink.store_id,
                                       PhoneTagLink.txn_ref)).one()
        assert tuple(link) == ("M-1", "S-1", "POS-1/T-1")

        page = httpx.get(shop.central.local(phone_reads(tag)))
        assert page.status_code == 200 and "Genuine product" in page.text
        assert shop.central.store.balance("M-1") == 49 + 25  # the sale, then engaging

        shop.sync()
        assert shop.daemon.store.find_by_card("C-1").balance == 49 + 25  # type: ignore[union-attr]
        again = shop.tap(member_card("C-1"))
        assert again["balance"] == 49 + 25

    def test_product_tag_without_a_member(self, shop: Shop) -> None:
        """A product tag on a sale without a member is answered, not refused: not linked,
        saying why; nothing is kept for central."""
        quote = shop.till.send_basket("T-9", [KETTLE], member_id=None)
        assert quote["member_id"] is None
        tapped = shop.tap(product_tag(bytes.fromhex("04AB12CD34EF57")))
        assert tapped["type"] == "product.tapped"
        assert (tapped["linked"], tapped["member_id"], tapped["txn_id"]) == (False, None, None)
        assert "no member on the sale" in tapped["text"]
        assert tag_links(shop.daemon.store.engine) == []


class TestVisitLink:
    def test_receipt_link_answers_the_visit_question(self, shop: Shop) -> None:
        """points.awarded of a member's sale carries the https link to its visit page; once
        synced, following it (plain HTTP through the proxy's path) asks the question and
        takes the answer, counted for the terminal's store; a sale without a member has
        no link."""
        shop.tap_member("C-1")
        shop.till.send_basket("T-1", [KETTLE], member_id="M-1")
        awarded = shop.till.commit("T-1")
        url = awarded["visit_url"]
        assert re.fullmatch(r"https://shop\.example/v/[0-9a-f]{32}", url), url
        assert shop.till.commit("T-1")["visit_url"] == url  # the repeated answer too
        shop.sync()
        page = httpx.get(shop.central.local(url))
        assert page.status_code == 200 and "Dana" not in page.text
        action, token = re.findall(r'action="(/v/[0-9a-f]{32})" method="post" novalidate>\s*'
                                   r'<input type="hidden" name="csrf_token" '
                                   r'value="([0-9a-f]{64})">', page.text)[0]
        done = httpx.post(shop.central.url + action, data={"csrf_token": token, "score": "9"})
        assert done.status_code == 303
        now = shop.central.store.clock()
        figures = visits.store_nps(shop.central.store, now - timedelta(days=1),
                                   now + timedelta(days=1))
        assert [(f.store_id, f.answers, f.nps) for f in figures] == [("S-1", 1, 100)]
        shop.till.send_basket("T-2", [KETTLE], member_id=None)
        assert "visit_url" not in shop.till.commit("T-2")


class TestWhichSale:
    def test_member_at_the_till_wins_then_the_newest_sale_with_a_member(self) -> None:
        """A product tap names no sale: the member at the till's newest sale takes it (none
        yet: no link, never someone else's sale); with nobody at the till (a restart), the
        newest sale that has a member; sales without one never do."""
        session = TillSession()
        dana = session.identify("M-1", "Dana", 0)
        first = session.open_txn("POS-1", "T-1")
        session.bind(first, "M-1")
        assert sale_for_tag(session) is first
        session.identify("M-2", "Noa", 0)  # Noa at the till, her sale not rung up yet
        assert sale_for_tag(session) is None
        second = session.open_txn("POS-1", "T-2")
        session.bind(second, "M-2")
        assert sale_for_tag(session) is second
        session.member = dana
        assert sale_for_tag(session) is first
        session.member = None
        assert sale_for_tag(session) is second
        session.close("POS-1", "T-1")
        session.close("POS-1", "T-2")
        nobody = session.open_txn("POS-1", "T-3")
        session.bind(nobody, None)
        assert sale_for_tag(session) is None

    def test_product_code_from_the_tag(self) -> None:
        """The code is the SUN file's sku, the signed token's product, else the URL's last
        part; anything central would refuse is no code."""
        def tap(product: dict[str, str]) -> TapEvent:
            return TapEvent("product", "04AB12CD34EF56", "Type4ATag", product=product,
                            verified=True)

        assert product_sku(tap({"sku": "KETTLE-2", "url": "https://x/p/OTHER"})) == "KETTLE-2"
        assert product_sku(tap({"product": "MUG-1", "url": "https://x/p/MUG-1?u=1"})) == "MUG-1"
        assert product_sku(tap({"url": "https://x/p/PAN-3?picc_data=00"})) == "PAN-3"
        assert product_sku(tap({"sku": "bad code!"})) is None


class TestLinkProblems:
    def test_second_buyer_is_a_conflict_kept_once(self, phone_central: PhoneLive,
                                                  tmp_path: Path) -> None:
        """The same tag tapped in two members' sales at two terminals: the first link wins
        at central; the other terminal's round reports one conflict, keeps it marked for
        review and never sends it again."""
        central = phone_central
        central.store.add_member("M-2", "Noa", card_id="C-2")
        tag = TapEvent("product", "04AB12CD34EF99", "Type4ATag", verified=True,
                       product={"sku": "KETTLE-2", "url": TAG_BASE + "KETTLE-2?x"})
        stores: list[LocalStore] = []
        reports = []
        try:
            for name, card, member in (("a", "C-1", "M-1"), ("b", "C-2", "M-2")):
                url = f"sqlite:///{tmp_path / f'{name}.db'}"
                upgrade_terminal(url)
                store = LocalStore(url)
                stores.append(store)
                _tid, code = central.store.add_terminal("S-1")
                with SyncClient(central.url) as anon:
                    answer = anon.enroll(code)
                store.set_enrollment(server_url=central.url, terminal_id=answer["terminal_id"],
                                     store_id="S-1", credential=answer["credential"])
                with SyncClient(central.url, answer["credential"]) as client:
                    run_sync(store, client)  # the members reach the terminal
                    service = TerminalService(store)
                    service.on_tap(TapEvent("member", "04A1B2C3D4E5F6", "NTAG213",
                                            card_id=card, verified=True))
                    service.on_message(BasketUpdate("POS-1", "T-1", (
                        BasketItem("KETTLE-2", 1, 4990, "kitchen"),), member))
                    tapped = service.on_tap(tag)
                    assert isinstance(tapped, ProductTapped) and tapped.linked
                    reports.append(run_sync(store, client))
                    reports.append(run_sync(store, client))
                    service.coupons.close()
        finally:
            for store in stores:
                store.close()
        assert [r.conflicts for r in reports] == [0, 0, 1, 0]
        assert "tag 04AB12CD34EF99 (KETTLE-2): conflict" in reports[2].problems[0]
        with central.store.read() as conn:
            owner = conn.execute(select(PhoneTagLink.member_id)).scalar_one()
        assert owner == "M-1"

    def test_store_failure_is_answered_not_raised(self, tmp_path: Path) -> None:
        """The store failing while a link is written: product.tapped says so (not linked,
        tap again), never an exception on the tap path."""
        store = LocalStore(f"sqlite:///{tmp_path / 't.db'}")
        try:
            with store.engine.begin() as conn:
                conn.exec_driver_sql("DROP TABLE tag_links")
            session = TillSession()
            session.identify("M-1", "Dana", 0)
            session.bind(session.open_txn("POS-1", "T-1"), "M-1")
            tag = TapEvent("product", "04AB12CD34EF56", "Type4ATag", verified=True,
                           product={"sku": "KETTLE-2"})
            got = TagDesk(store, lambda: datetime(2026, 11, 30)).on_product(tag, session)
        finally:
            store.close()
        assert (got.linked, got.txn_id) == (False, "T-1")
        assert "store is unavailable" in got.text
