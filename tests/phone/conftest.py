"""Phone page fixtures: a live central server with SUN keys, an issuer key and a catalog."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from pos_loyalty.config import SunKeys
from pos_loyalty.nfc.cardformat import Issuer
from pos_loyalty.nfc.diversify import tag_key
from pos_loyalty.nfc.sim.type4 import Ntag424Dna
from pos_loyalty.nfc.sun import pack_file_data
from pos_loyalty.server.central import CentralStore
from pos_loyalty.server.config import PhoneConfig
from tests.conftest import REPO

META = bytes.fromhex("0F1E2D3C4B5A69788796A5B4C3D2E1F0")
MASTER = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
SYSTEM_ID = b"shop-test"
TAG_BASE = "https://shop.example/p/"
MEMBER_URL = "https://shop.example/m/c"
SKU = "KETTLE-2"
ISSUER = Issuer(bytes(range(32)))


def product_tag(uid: bytes, sku: str = SKU, counter: int = 0) -> Ntag424Dna:
    """An emulated NTAG 424 DNA product tag provisioned with its own diversified key."""
    return Ntag424Dna(TAG_BASE + sku, META, tag_key(MASTER, uid, SYSTEM_ID), uid=uid,
                      counter=counter, file_data=pack_file_data({"sku": sku}))


def member_card(uid: bytes, card_id: str) -> Ntag424Dna:
    """An emulated NTAG 424 DNA member card of the chain (its own diversified key)."""
    return Ntag424Dna(MEMBER_URL, META, tag_key(MASTER, uid, SYSTEM_ID), uid=uid,
                      file_data=pack_file_data({"card": card_id}))


def phone_config(catalog: Path | None, **limits: Any) -> PhoneConfig:
    limits = {"points_for_engaging": 25, **limits}
    config = PhoneConfig(sun=SunKeys(META, MASTER, SYSTEM_ID, member_url=MEMBER_URL,
                                     product_url=TAG_BASE),
                         issuer_keys=(ISSUER.public_key.hex(),), catalog_dir=catalog)
    return replace(config, **limits)


@dataclass
class PhoneLive:
    url: str
    store: CentralStore

    def local(self, tag_url: str) -> str:
        """The tag's https URL pointed at the test server (what the proxy in front does)."""
        assert tag_url.startswith("https://shop.example/")
        return self.url + tag_url[len("https://shop.example"):]


@pytest.fixture
def catalog_dir(tmp_path: Path) -> Path:
    target = tmp_path / "catalog"
    shutil.copytree(REPO / "examples" / "catalog", target)
    return target


def start(db_url: str, config: PhoneConfig) -> Iterator[PhoneLive]:
    from pos_loyalty.server.app import create_app
    from pos_loyalty.server.config import Settings
    from pos_loyalty.server.runner import ServerThread

    store = CentralStore(db_url)
    app = create_app(Settings(db_url=db_url, phone=config), store=store, migrate=False)
    with ServerThread(app) as srv:
        yield PhoneLive(srv.url, store)
    store.close()


@pytest.fixture
def phone(central_url: str, catalog_dir: Path) -> Iterator[PhoneLive]:
    """Central (SQLite, then PostgreSQL) serving the phone pages with the example catalog."""
    yield from start(central_url, phone_config(catalog_dir))


@pytest.fixture
def phone_sqlite(tmp_path: Path, catalog_dir: Path) -> Iterator[PhoneLive]:
    """Central on SQLite only, serving the phone pages (for browser tests, where the
    database makes no difference to what the page shows)."""
    from pos_loyalty.migrations import upgrade_central

    url = f"sqlite:///{tmp_path / 'phone.db'}"
    upgrade_central(url)
    yield from start(url, phone_config(catalog_dir))
