"""A product tag tapped at the till links the item to its buyer, end to end.

Nothing mocked: the emulated NTAG 424 DNA and member card answer nfcpy's reader over its udp
driver, the terminal daemon and the reference till talk protocol v1 over a real pty pair,
central is a live uvicorn server reached over HTTP, and the customer's phone reads the tag
with nfcpy too (a second emulator) before opening its URL on central.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from nfc_testkit import nfcpy_activate
from sqlalchemy import select

from pos_loyalty.config import PhoneTill, SunKeys, TerminalConfig
from pos_loyalty.migrations import upgrade_central, upgrade_terminal
from pos_loyalty.nfc.events import TapEvent
from pos_loyalty.nfc.sim.base import EmulatedTag
from pos_loyalty.nfc.sim.cards import member_card
from pos_loyalty.nfc.sim.emulator import TagEmulator
from pos_loyalty.nfc.sim.type4 import Ntag424Dna
from pos_loyalty.pos.messages import BasketItem, BasketUpdate, ProductTapped
from pos_loyalty.pos.pty import PtyBridge
from pos_loyalty.pos.till import SimulatedTill
from pos_loyalty.server.phone import visits
from pos_loyalty.store import LocalStore
from pos_loyalty.store.central_models import PhoneTagLink
from pos_loyalty.sync.client import SyncClient, run_sync
from pos_loyalty.terminal.daemon import TerminalDaemon
from pos_loyalty.terminal.service import TerminalService
from pos_loyalty.terminal.session import TillSession
from pos_loyalty.terminal.tags import TagDesk, product_sku, sale_for_tag
from tests.conftest import REPO
from tests.phone.conftest import (
    MASTER,
    META,
    SYSTEM_ID,
    TAG_BASE,
    PhoneLive,
    phone_config,
    product_tag,
    start,
)
from tests.storerows import tag_links

VISIT_URL = "https://shop.example/v/"
TAP_ANSWERS = {"member.identified", "member.unknown", "card.refused", "product.tapped"}
KETTLE = {"sku": "KETTLE-2", "qty": 1, "unit_price": 4990, "category": "kitchen"}


@dataclass
class Shop:
    """Central, one enrolled terminal daemon on simulated RF and a till on a pty."""

    central: PhoneLive
    daemon: TerminalDaemon
    till: SimulatedTill
    rf: TagEmulator

    def tap(self, tag: EmulatedTag) -> dict[str, Any]:
        """Present a tag at the terminal's reader until the till hears about it."""
        time.sleep(0.4)  # the previous tag has just left: let nfcpy's presence check see it
        self.rf.present(tag)
        try:
            return self.till.next_message(TAP_ANSWERS, timeout=10.0)
        finally:
            self.rf.remove()

    def tap_member(self, card_id: str) -> dict[str, Any]:
        ident = self.tap(member_card(card_id))
        assert ident["type"] == "member.identified", ident
        return ident

    def sync(self) -> None:
        assert self.daemon.sync is not None
        report = self.daemon.sync.sync_once()
        assert report.ok, report.error


def make_terminal(central: PhoneLive, tmp_path: Path, rf: TagEmulator, bridge: PtyBridge,
                  store_id: str = "S-1", name: str = "terminal") -> TerminalDaemon:
    """An enrolled terminal whose reader trusts the test chain's SUN product keys."""
    (tmp_path / name).mkdir()
    db_url = f"sqlite:///{tmp_path / name / 'terminal.db'}"
    upgrade_terminal(db_url)
    _tid, code = central.store.add_terminal(store_id)
    with SyncClient(central.url) as anon:
        answer = anon.enroll(code)
    local = LocalStore(db_url)
    local.set_enrollment(server_url=central.url, terminal_id=answer["terminal_id"],
                         store_id=answer["store_id"], credential=answer["credential"])
    local.close()
    config = TerminalConfig(
        terminal_id="T-SHOP", data_dir=tmp_path / name, reader_path=f"udp:127.0.0.1:{rf.port}",
        debounce_s=0.0, serial_port=bridge.terminal_path, db_url=db_url, simulation=True,
        sun_keys=SunKeys(META, MASTER, SYSTEM_ID, product_url=TAG_BASE),
        sync_interval_s=3600.0, phone=PhoneTill(visit_url=VISIT_URL))
    return TerminalDaemon(config)


@contextmanager
def open_shop(central: PhoneLive, tmp_path: Path, store_id: str = "S-1",
              pos_id: str = "POS-1") -> Iterator[Shop]:
    """A running terminal daemon (its own emulator and pty) and a till, synced once."""
    with TagEmulator() as rf, PtyBridge() as bridge:
        daemon = make_terminal(central, tmp_path, rf, bridge, store_id, name=pos_id)
        thread = threading.Thread(target=daemon.run, name="terminal", daemon=True)
        till = SimulatedTill(bridge.till_path, pos_id=pos_id)
        shop = Shop(central, daemon, till, rf)
        daemon.start()
        thread.start()
        till.start()
        try:
            till.wait_link_up(10.0)
            shop.sync()  # the members and cards reach the terminal
            yield shop
        finally:
            till.close()
            daemon.stop()
            thread.join(timeout=10)


def central_server(tmp_path: Path) -> Iterator[PhoneLive]:
    """Central on SQLite with the phone pages (the example catalog) and member M-1."""
    url = f"sqlite:///{tmp_path / 'central.db'}"
    upgrade_central(url)
    catalog = tmp_path / "catalog"
    shutil.copytree(REPO / "examples" / "catalog", catalog)
    for live in start(url, phone_config(catalog)):
        live.store.add_member("M-1", "Dana Levi", card_id="C-1")
        yield live


@pytest.fixture
def phone_central(tmp_path: Path) -> Iterator[PhoneLive]:
    yield from central_server(tmp_path)


@pytest.fixture
def shop(phone_central: PhoneLive, tmp_path: Path) -> Iterator[Shop]:
    with open_shop(phone_central, tmp_path) as one:
        yield one


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
