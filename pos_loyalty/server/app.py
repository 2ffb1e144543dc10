"""The FastAPI application: routers, the body-size cap, and JSON errors with a reason.

Every refusal is JSON ``{"error": ..., "reason": ...}``: 401/403 for credentials, 404/409
for an admin change that cannot be made, 408 for a body that does not arrive in time, 413
for a body over the cap, 422 for a body that does not validate, 429 for too many failed
enrollments, 503 if the database is down. Bad input never reaches a 5xx.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pos_loyalty import __version__
from pos_loyalty.errors import AuthError, ConfigError, StoreError
from pos_loyalty.server import logs
from pos_loyalty.server.central import CentralStore, secure_sqlite_file
from pos_loyalty.server.config import Settings
from pos_loyalty.server.db import Refused
from pos_loyalty.server.health import router as health
from pos_loyalty.server.ledger import router as ledger
from pos_loyalty.server.members import router as members
from pos_loyalty.server.offers import router as offers
from pos_loyalty.server.programs import router as programs
from pos_loyalty.server.sales import router as sales
from pos_loyalty.server.sales.schemas import SalesPushCreate
from pos_loyalty.server.schemas import PushCreate
from pos_loyalty.server.sun import router as sun
from pos_loyalty.server.sync import router as sync
from pos_loyalty.server.terminals import router as enroll
from pos_loyalty.server.throttle import FailureThrottle

log = logging.getLogger("pos_loyalty.server")

_TITLES = {400: "bad request", 401: "unauthorized", 403: "forbidden", 404: "not found",
           405: "method not allowed", 408: "request timeout", 409: "conflict",
           413: "body too large",
           422: "invalid request", 429: "too many requests", 503: "unavailable"}


def _error(status: int, reason: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": _TITLES.get(status, "error"), "reason": reason},
                        status_code=status, headers=headers)


class BodyLimit:
    """ASGI middleware: refuse bodies over ``max_bytes`` by header or by counting chunks,
    and bodies whose next chunk takes longer than ``timeout_s`` to arrive (408)."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float = 30.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                if not value.isdigit() or len(value) > 18:
                    await _error(400, "invalid Content-Length")(scope, receive, send)
                    return
                if int(value) > self.max_bytes:
                    await _error(413, f"body over {self.max_bytes} bytes")(scope, receive, send)
                    return
        seen = 0
        complete = False

        async def limited() -> Message:
            nonlocal seen, complete
            if complete:  # waiting for a disconnect after the body: no deadline
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.timeout_s)
            except TimeoutError as exc:
                raise StarletteHTTPException(
                    408, f"request body not received within {self.timeout_s:g} s") from exc
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise StarletteHTTPException(413, f"body over {self.max_bytes} bytes")
                complete = not message.get("more_body", False)
            return message

        await self.app(scope, limited, send)


def _validation_reason(errors: Any) -> str:
    parts = []
    for err in list(errors)[:3]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{loc or 'body'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _complete_openapi(app: FastAPI) -> None:
    """The push route parses its body itself (after the credential check), so FastAPI does
    not see its model: add PushCreate and the models it refers to under components."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = FastAPI.openapi(app)
            components = doc.setdefault("components", {}).setdefault("schemas", {})
            for model in (PushCreate, SalesPushCreate):
                schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                for name, sub in schema.pop("$defs", {}).items():
                    components.setdefault(name, sub)
                components[model.__name__] = schema
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(settings: Settings | None = None, *, store: CentralStore | None = None,
               migrate: bool = True) -> FastAPI:
    """Build the app; migrates the central database first unless ``migrate`` is False."""
    settings = settings or Settings.from_env()
    if migrate:
        from pos_loyalty.migrations import upgrade_central

        secure_sqlite_file(settings.db_url)
        upgrade_central(settings.db_url)
    logs.install()
    own_store = store is None
    central = store or CentralStore(settings.db_url,
                                    future_tolerance_s=settings.future_tolerance_s)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if own_store:
            central.close()

    # no /docs or /redoc: their pages load scripts from a public CDN (see docs/console.md)
    app = FastAPI(title="pos-loyalty central", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.store = central
    app.state.settings = settings
    app.state.enroll_throttle = FailureThrottle(settings.enroll_failures,
                                                settings.enroll_window_s)
    for module in (health, enroll, ledger, sync, sun, members, programs, sales, offers):
        app.include_router(module.router)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes,
                       timeout_s=settings.body_timeout_s)
    _complete_openapi(app)
    from pos_loyalty import web
    from pos_loyalty.server import console

    console.install(app)
    from pos_loyalty.server.phone import router as phone

    phone.install(app, central, settings.phone)
    app.mount(web.STATIC_PATH, StaticFiles(directory=web.STATIC_DIR), name="web-static")

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=303)

    @app.exception_handler(AuthError)
    async def on_auth(request: Request, exc: AuthError) -> JSONResponse:
        log.warning("refused %s %s from %s: %s", request.method, request.url.path,
                    request.client.host if request.client else "?", exc.reason)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return _error(exc.status, exc.reason, headers)

    @app.exception_handler(Refused)
    async def on_refused(_request: Request, exc: Refused) -> JSONResponse:
        return _error(exc.status, str(exc))

    @app.exception_handler(ConfigError)
    async def on_config(_request: Request, exc: ConfigError) -> JSONResponse:
        return _error(422, str(exc))  # a program body sent to the admin API

    @app.exception_handler(StoreError)
    async def on_store(_request: Request, exc: StoreError) -> JSONResponse:
        log.error("database error: %s", exc)
        return _error(503, "central database unavailable, retry later")

    @app.exception_handler(RequestValidationError)
    async def on_invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, _validation_reason(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> Response:
        reason = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        if request.url.path.startswith("/console/"):  # people get a page, programs JSON
            from starlette.concurrency import run_in_threadpool

            page: Response = await run_in_threadpool(console.error_page, request,
                                                     exc.status_code, reason)
            return page
        return _error(exc.status_code, reason, getattr(exc, "headers", None))

    return app
