"""Console fixtures: accounts on the central database and a client that signs in over HTTP."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from pos_loyalty.server.console.accounts import ConsoleAccounts
from tests.conftest import Central

PASSWORD = "a long enough passphrase"
TOKEN = re.compile(r'<form class="[^"]*" action="([^"]+)" method="post" novalidate[^>]*>\s*'
                   r'<input type="hidden" name="csrf_token" value="([0-9a-f]{64})">')


def form_tokens(html: str) -> dict[str, str]:
    """Action path -> CSRF token of every form on a page."""
    return dict(TOKEN.findall(html))


@dataclass
class ConsoleClient:
    """A browser-less console user: cookies kept, forms posted with the page's token."""

    http: httpx.Client
    accounts: ConsoleAccounts

    def sign_in(self, username: str, password: str = PASSWORD) -> httpx.Response:
        page = self.http.get("/console/login")
        token = form_tokens(page.text)["/console/login"]
        return self.http.post("/console/login", data={
            "csrf_token": token, "username": username, "password": password,
            "next": "/console/"})

    def post_form(self, page: str, action: str, data: dict[str, str]) -> httpx.Response:
        """Open ``page``, take the token of the form posting to ``action``, post ``data``."""
        html = self.http.get(page).text
        token = form_tokens(html)[action]
        return self.http.post(action, data={"csrf_token": token, **data})

    def token_for(self, action: str) -> str:
        """This session's valid token for ``action``, as if a page had offered that form
        (to show that a right the user lacks is refused even with a good token)."""
        from pos_loyalty.web import csrf

        session = self.accounts.session(self.http.cookies.get("pl_console"))
        assert session is not None
        return csrf.token(session.csrf_secret, action)


@pytest.fixture
def accounts(central: Central) -> ConsoleAccounts:
    return ConsoleAccounts(central.store)


UserFactory = Callable[..., str]


@pytest.fixture
def users(accounts: ConsoleAccounts) -> UserFactory:
    def make(username: str, role: str = "admin", stores: tuple[str, ...] = ()) -> str:
        accounts.add_user(username, PASSWORD, role, actor="test", stores=stores)
        return username

    return make


@pytest.fixture
def client(central: Central,
           accounts: ConsoleAccounts) -> Iterator[Callable[[], ConsoleClient]]:
    made: list[httpx.Client] = []

    def make() -> ConsoleClient:
        http = httpx.Client(base_url=central.url, timeout=30)
        made.append(http)
        return ConsoleClient(http, accounts)

    yield make
    for http in made:
        http.close()
