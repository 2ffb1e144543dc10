"""Store IT's `admin` commands run through the real CLI group on one SQLite central
database: the helper and fixture the admin tests share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pos_loyalty.cli import main
from pos_loyalty.migrations import upgrade_central
from pos_loyalty.server.central import CentralStore


class Admin:
    """The CLI over one SQLite central database, and a store on it for checks."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.url = f"sqlite:///{tmp_path / 'central.db'}"
        upgrade_central(self.url)
        self.store = CentralStore(self.url)

    def __call__(self, *args: str, ok: bool = True) -> Result:
        result = CliRunner().invoke(main, ["admin", *args, "--db", self.url])
        if ok:
            assert result.exit_code == 0, result.output + result.stderr
        else:
            assert result.exit_code != 0, result.output
            assert "Traceback" not in result.output + result.stderr
            assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        return result


@pytest.fixture
def admin(tmp_path: Path) -> Iterator[Admin]:
    a = Admin(tmp_path)
    yield a
    assert a.store.integrity() == []
    a.store.close()
