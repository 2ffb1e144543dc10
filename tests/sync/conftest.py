"""Every sync test that ran a central ends with ``pos-loyalty report integrity`` on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import CliRunner


@pytest.fixture(autouse=True)
def integrity_after(request: pytest.FixtureRequest) -> Iterator[None]:
    """After the scenario: every balance equals the sum of its applied ledger rows."""
    if "central" not in request.fixturenames:
        yield
        return
    from pos_loyalty.server.cli import report

    central = request.getfixturevalue("central")  # set up first, so torn down after this
    yield
    result = CliRunner().invoke(report, ["integrity", "--db", central.db_url])
    assert result.exit_code == 0, result.output
