"""FastAPI dependencies: the central store and the authenticated terminal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from pos_loyalty.errors import AuthError
from pos_loyalty.server.central import CentralStore
from pos_loyalty.server.config import Settings
from pos_loyalty.server.terminals.queries import BAD_CREDENTIAL, TerminalAuth


def get_store(request: Request) -> CentralStore:
    store: CentralStore = request.app.state.store
    return store


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


StoreDep = Annotated[CentralStore, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def current_terminal(
    store: StoreDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> TerminalAuth:
    """The terminal behind ``Authorization: Bearer <credential>``; 401/403 otherwise.

    Every bad credential (missing, malformed, unknown, wrong secret) gets the same 401
    reason, so the answer tells a prober nothing about which part was wrong.
    """
    if authorization is None:
        raise AuthError(BAD_CREDENTIAL)
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError(BAD_CREDENTIAL)
    return store.authenticate(token.strip())


TerminalDep = Annotated[TerminalAuth, Depends(current_terminal)]
