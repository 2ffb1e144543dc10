"""FastAPI dependencies: the central store, the authenticated terminal, the admin."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
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
    request: Request,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Iterator[str]:
    """The admin API's caller: ``Authorization: Bearer <POS_LOYALTY_ADMIN_TOKEN>``, or a
    signed-in console user's session cookie (roles as in the console; see
    :func:`pos_loyalty.server.console.web.api_caller`).

    Yields who it is. A change (any method but GET/HEAD) is written to the audit log once the
    route has done it, under the console user's name or ``admin-token``. With no token
    configured, token access is off (403): there is no
    default key.
    """
    from pos_loyalty.server.console.web import api_caller, audit_api

    scheme, _, token = (authorization or "").partition(" ")
    if settings.admin_token and scheme.lower() == "bearer" and hmac.compare_digest(
            hashlib.sha256(token.strip().encode()).digest(),
            hashlib.sha256(settings.admin_token.encode()).digest()):
        yield "admin-token"
        if request.method not in ("GET", "HEAD"):
            audit_api(request, "admin-token")
        return
    principal = None if authorization else api_caller(request)
    if principal is not None:
        yield principal.username
        if request.method not in ("GET", "HEAD"):
            audit_api(request, principal.username)
        return
    if not settings.admin_token:
        raise AuthError("the admin API is off: set POS_LOYALTY_ADMIN_TOKEN on the server "
                        "or sign in to the console", status=403)
    raise AuthError("invalid or missing admin token")


AdminDep = Annotated[str, Depends(require_admin)]
