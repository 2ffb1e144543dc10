"""An enrolled terminal daemon on simulated RF with a reference till on a pty, and central
with the phone pages: the shop the product-tag and coupon tests run at the till."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pos_loyalty.config import PhoneTill, SunKeys, TerminalConfig
from pos_loyalty.migrations import upgrade_central, upgrade_terminal
from pos_loyalty.nfc.sim.base import EmulatedTag
from pos_loyalty.nfc.sim.cards import member_card
from pos_loyalty.nfc.sim.emulator import TagEmulator
from pos_loyalty.pos.pty import PtyBridge
from pos_loyalty.pos.till import SimulatedTill
from pos_loyalty.store import LocalStore
from pos_loyalty.sync.client import SyncClient
from pos_loyalty.terminal.daemon import TerminalDaemon
from tests.conftest import REPO
from tests.phone.conftest import MASTER, META, SYSTEM_ID, TAG_BASE, PhoneLive, phone_config, start

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
