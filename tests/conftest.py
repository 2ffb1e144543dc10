"""Shared fixtures: the central database on SQLite and on a real PostgreSQL (see tests/pg.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import SQLAlchemyError

from pos_loyalty.errors import LoyaltyError
from pos_loyalty.server.central import CentralStore
from pos_loyalty.store.local import LocalStore
from tests.pg import PgDatabases, PgUnavailable, pg_server
from tests.ports import ReservedPort

REPO = Path(__file__).resolve().parents[1]


def _slow_seconds(item: pytest.Item) -> float:
    mark = item.get_closest_marker("slow")
    return 0.0 if mark is None else float(mark.kwargs.get("seconds", 10))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests marked ``slow`` run first, longest first, each followed by one quick test.

    pytest-xdist (``--dist load --maxschedchunk 1``) hands tests out in this order and keeps
    about two queued per worker: every long test starts at once, with only a quick one queued
    behind it, instead of one starting at the end and keeping its worker busy long after the
    others ran out of work.
    """
    slow = sorted((i for i in items if _slow_seconds(i)), key=_slow_seconds, reverse=True)
    quick = [i for i in items if not _slow_seconds(i)]
    ordered: list[pytest.Item] = []
    for item in slow:
        ordered.append(item)
        if quick:
            ordered.append(quick.pop(0))
    items[:] = ordered + quick


@pytest.fixture(scope="session", autouse=True)
def _private_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Commands that fall back to the default data directory (~/.local/share/pos-loyalty)
    write into this test process's own temporary one instead: parallel workers and other
    runs on the machine never share a store file through it."""
    old = os.environ.get("POS_LOYALTY_DATA_DIR")
    os.environ["POS_LOYALTY_DATA_DIR"] = str(tmp_path_factory.mktemp("data-dir"))
    yield
    if old is None:
        os.environ.pop("POS_LOYALTY_DATA_DIR", None)
    else:
        os.environ["POS_LOYALTY_DATA_DIR"] = old


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[PgDatabases]:
    """One PostgreSQL server for the session; skipped (or failed, if required) when absent."""
    with ExitStack() as stack:
        try:
            url = stack.enter_context(pg_server())
            dbs = PgDatabases(url)
            dbs.template()
        except (PgUnavailable, SQLAlchemyError, LoyaltyError) as exc:
            if os.environ.get("POS_LOYALTY_REQUIRE_PG") == "1":
                pytest.fail(f"PostgreSQL required (POS_LOYALTY_REQUIRE_PG=1) but {exc}")
            pytest.skip(f"PostgreSQL not available: {exc}")
        stack.callback(dbs.close)
        yield dbs


@pytest.fixture
def reserved_port() -> Iterator[ReservedPort]:
    """A loopback port nobody listens on until the test starts a server there; held for the
    whole test so no parallel worker can take it (see tests/ports.py)."""
    with ReservedPort() as port:
        yield port


@pytest.fixture(params=["sqlite", "postgresql"])
def central_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty central database: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        from pos_loyalty.migrations import upgrade_central

        url = f"sqlite:///{tmp_path / 'central.db'}"
        upgrade_central(url)
        yield url
        return
    dbs: PgDatabases = request.getfixturevalue("pg_databases")
    url = dbs.create()
    yield url
    dbs.drop(url)


@dataclass
class Central:
    """A running central server (real uvicorn on loopback) and its store."""

    url: str
    db_url: str
    store: CentralStore


@pytest.fixture
def central(central_url: str) -> Iterator[Central]:
    from pos_loyalty.server.app import create_app
    from pos_loyalty.server.config import Settings
    from pos_loyalty.server.runner import ServerThread

    store = CentralStore(central_url)
    app = create_app(Settings(db_url=central_url), store=store, migrate=False)
    with ServerThread(app) as srv:
        yield Central(srv.url, central_url, store)
    store.close()


@dataclass
class TerminalHandle:
    """An enrolled terminal: its local store and credential."""

    local: LocalStore
    terminal_id: str
    credential: str
    server_url: str


class TerminalFactory:
    """Makes enrolled terminals (fresh local SQLite store each) against one central."""

    def __init__(self, central: Central, tmp_path: Path) -> None:
        self.central = central
        self.tmp_path = tmp_path
        self.made: list[LocalStore] = []

    def __call__(self, store_id: str = "S1", *, name: str | None = None) -> TerminalHandle:
        from pos_loyalty.migrations import upgrade_terminal
        from pos_loyalty.sync.client import SyncClient

        tid, code = self.central.store.add_terminal(store_id)
        url = f"sqlite:///{self.tmp_path / f'{name or tid}.db'}"
        upgrade_terminal(url)
        local = LocalStore(url)
        self.made.append(local)
        with SyncClient(self.central.url) as anon:
            answer = anon.enroll(code)
        local.set_enrollment(server_url=self.central.url, terminal_id=answer["terminal_id"],
                             store_id=answer["store_id"], credential=answer["credential"])
        return TerminalHandle(local, answer["terminal_id"], answer["credential"],
                              self.central.url)

    def close(self) -> None:
        for local in self.made:
            local.close()


@pytest.fixture
def terminals(central: Central, tmp_path: Path) -> Iterator[TerminalFactory]:
    factory = TerminalFactory(central, tmp_path)
    yield factory
    factory.close()


def schema_head(which: str) -> str:
    """The newest revision of the ``central`` or ``terminal`` schema, read from the migration
    scripts themselves (so a test never pins a revision name)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from pos_loyalty.migrations import HERE

    cfg = Config()
    cfg.set_main_option("script_location", str(HERE / which))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


CHROMIUM = Path("/usr/bin/chromium")
"""Debian's Chromium, driven by Playwright (never a browser Playwright downloads)."""


def _browser_unavailable(reason: str) -> None:
    if os.environ.get("POS_LOYALTY_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser required (POS_LOYALTY_REQUIRE_BROWSER=1) but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium for the page tests; skipped with the reason when it is missing,
    unless POS_LOYALTY_REQUIRE_BROWSER=1 (CI) makes that a failure."""
    if not CHROMIUM.exists():
        _browser_unavailable(f"{CHROMIUM} is missing (apt-get install chromium; "
                             "see .ci/browser.sh)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _browser_unavailable("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as p:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield b
        b.close()
