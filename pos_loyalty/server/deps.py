"""FastAPI dependencies: the central store, the authenticated terminal, the admin."""

from __future__ import annotations

import hashlib
import hmac
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


def require_admin(
    settings: SettingsDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> str:
    """The admin API's caller: ``Authorization: Bearer <POS_LOYALTY_ADMIN_TOKEN>``.

    Returns who it is, for the audit trail of the changes it makes. With no token
    configured the admin API is off (403): there is no default key. The console's
    per-user sessions and roles replace this dependency.
    """
    if not settings.admin_token:
        raise AuthError("the admin API is off: set POS_LOYALTY_ADMIN_TOKEN on the server",
                        status=403)
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
            hashlib.sha256(token.strip().encode()).digest(),
            hashlib.sha256(settings.admin_token.encode()).digest()):
        raise AuthError("invalid or missing admin token")
    return "admin-token"


AdminDep = Annotated[str, Depends(require_admin)]
