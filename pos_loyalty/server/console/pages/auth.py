"""Sign in and sign out. The sign-in form has its own CSRF secret in a short-lived cookie,
since there is no session yet; failed sign-ins are throttled per address."""

from __future__ import annotations

import math
import secrets
import time

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from pos_loyalty.server.console.web import (
    API_COOKIE,
    API_PATH,
    COOKIE,
    PRE_COOKIE,
    PREFIX,
    FieldsDep,
    PageError,
    PostedDep,
    console_of,
    redirect,
    safe_next,
)
from pos_loyalty.web import csrf
from pos_loyalty.web.forms import FormErrors

router = APIRouter(prefix=PREFIX)
LOGIN = f"{PREFIX}/login"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _login_page(request: Request, pre: str, *, next_path: str, username: str = "",
                errors: FormErrors | None = None, status: int = 200,
                retry_after: int | None = None) -> HTMLResponse:
    pages = console_of(request).pages
    response = pages.response(request, "console/login.html", {
        "user": None, "nav": "", "notice": None, "errors": errors, "username": username,
        "next_path": next_path, "token": csrf.token(pre, LOGIN)}, status=status,
        headers={"Retry-After": str(retry_after)} if retry_after else None)
    response.set_cookie(PRE_COOKIE, pre, max_age=3600, path=LOGIN, httponly=True,
                        samesite="strict", secure=_secure(request))
    return response


@router.get("/login")
def login_form(request: Request, next: str = "") -> Response:
    pre = request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(32)
    return _login_page(request, pre[:100], next_path=safe_next(next))


@router.post("/login")
async def login(request: Request, fields: FieldsDep) -> Response:
    console = console_of(request)
    pages = console.pages
    language = pages.language(request)
    pre = request.cookies.get(PRE_COOKIE, "")[:100]
    if not pre or not csrf.valid(pre, LOGIN, fields.get(csrf.FIELD)):
        raise PageError(403, pages.gettext(
            language, "This form has expired or did not come from this console. Go back, "
                      "reload the page and try again."))
    username = fields.get("username", 64)
    password = fields.get("password", 300)
    next_path = safe_next(fields.get("next", 300))
    errors = FormErrors()
    if not username:
        errors.add("username", pages.gettext(language, "Enter your user name"))
    if not password:
        errors.add("password", pages.gettext(language, "Enter your password"))
    if errors:
        return _login_page(request, pre, next_path=next_path, username=username,
                           errors=errors, status=400)
    client = request.client.host if request.client else "?"
    throttle = console.login_throttle
    wait = throttle.retry_after(client, time.monotonic())
    if wait > 0:
        errors.add("username", pages.gettext(
            language, "Too many failed sign-ins from this address. Wait a minute and try "
                      "again."))
        return _login_page(request, pre, next_path=next_path, username=username,
                           errors=errors, status=429, retry_after=math.ceil(wait))
    principal = await run_in_threadpool(console.accounts.check_password, username, password)
    if principal is None:
        throttle.failed(client, time.monotonic())
        errors.add("username", pages.gettext(
            language, "The user name or password is not right"))
        return _login_page(request, pre, next_path=next_path, username=username,
                           errors=errors, status=400)
    token, session = await run_in_threadpool(console.accounts.open_session, principal)
    response = redirect(next_path)
    max_age = int((session.expires_at - console.store.clock()).total_seconds())
    for name, path in ((COOKIE, f"{PREFIX}/"), (API_COOKIE, API_PATH)):  # pages; admin API
        response.set_cookie(name, token, path=path, httponly=True, samesite="lax",
                            secure=_secure(request), max_age=max_age)
    response.delete_cookie(PRE_COOKIE, path=LOGIN)
    return response


@router.post("/logout")
def logout(view: PostedDep) -> Response:
    view.console.accounts.close_session(view.session)
    response = redirect(LOGIN)
    for name, path in ((COOKIE, f"{PREFIX}/"), (API_COOKIE, API_PATH)):
        response.delete_cookie(name, path=path)
    return response
