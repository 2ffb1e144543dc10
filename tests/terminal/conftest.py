"""Fixtures of the product-tag and coupon tests: central with the phone pages, a shop."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.phone.conftest import PhoneLive
from tests.terminal.tagshop import Shop, central_server, open_shop


@pytest.fixture
def phone_central(tmp_path: Path) -> Iterator[PhoneLive]:
    """Central on SQLite with the phone pages and member M-1, live over HTTP."""
    yield from central_server(tmp_path)


@pytest.fixture
def shop(phone_central: PhoneLive, tmp_path: Path) -> Iterator[Shop]:
    """A running enrolled terminal and a till on a pty, at that central."""
    with open_shop(phone_central, tmp_path) as one:
        yield one
