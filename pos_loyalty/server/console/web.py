"""The console's request plumbing: session cookie, the acting user, CSRF check, error pages.

A page handler takes a :class:`View` (the signed-in user's request) or, for a form post, a
:class:`Posted` view whose CSRF token was checked against the form's own action path. Not
signed in: a redirect to the sign-in page. Not allowed: a 403 page. Unknown: a 404 page.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from pos_loyalty.rules.model import money
from pos_loyalty.server.central import CentralStore
from pos_loyalty.server.config import Settings
from pos_loyalty.server.console.accounts import ConsoleAccounts, Principal, Session
from pos_loyalty.server.throttle import FailureThrottle
from pos_loyalty.web import LOCALE_DIR as WEB_LOCALE
from pos_loyalty.web import csrf
from pos_loyalty.web.i18n import N_, Catalogs
from pos_loyalty.web.pages import Pages

HERE = Path(__file__).resolve().parent
INSIGHT = HERE.parents[1] / "insight"  # the owner's report pages: templates and catalog
COOKIE = "pl_console"
PRE_COOKIE = "pl_console_pre"  # CSRF secret of the sign-in form, before any session
PREFIX = "/console"
API_PATH = "/v1/admin/"  # the admin API also takes the session, by a cookie of its own
API_COOKIE = "pl_console_api"  # the same token as COOKIE, sent only to API_PATH
API_HEADER = "X-Console-Api"  # a change through the API by session needs it (CSRF defence)
MAX_FIELDS = 200
MAX_FILES = 2  # a program and a sales file
MAX_UPLOAD = 4 * 1024 * 1024  # a program or sales file


class Console:
    """The console's long-lived parts: accounts, templates and catalogs, sign-in throttle."""

    def __init__(self, store: CentralStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.accounts = ConsoleAccounts(store)
        self.pages = Pages([HERE / "templates", INSIGHT / "templates"],
                           Catalogs([HERE / "locale", INSIGHT / "locale", WEB_LOCALE]),
                           globals={"home_url": f"{PREFIX}/", "money": money})
        self.login_throttle = FailureThrottle(settings.enroll_failures, settings.enroll_window_s)


class LoginRequired(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class PageError(Exception):
    """An error page: 400 bad form, 403 not allowed, 404 not found (message is translated)."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


@dataclass
class Fields:
    """A posted form: text fields (several values per name kept) and at most one file."""

    values: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    filenames: dict[str, str] = field(default_factory=dict)  # as the browser named them

    def get(self, name: str, limit: int = 200) -> str:
        got = self.values.get(name)
        return got[0].strip()[:limit] if got else ""

    def getlist(self, name: str) -> list[str]:
        return [v.strip()[:200] for v in self.values.get(name, [])]

    def as_dict(self) -> dict[str, str]:
        return {k: v[0] for k, v in self.values.items() if v}


async def read_fields(request: Request) -> Fields:
    """The form of a POST (urlencoded or multipart), bounded in fields and file size."""
    out = Fields()
    if request.method != "POST":
        return out
    try:
        async with request.form(max_files=MAX_FILES, max_fields=MAX_FIELDS) as form:
            for name, value in form.multi_items():
                if isinstance(value, UploadFile):
                    data = await value.read(MAX_UPLOAD + 1)
                    if len(data) > MAX_UPLOAD:
                        raise PageError(413, f"A file may be at most {MAX_UPLOAD} bytes.")
                    if data:
                        out.files[name] = data
                        out.filenames[name] = (value.filename or name)[:200]
                else:
                    out.values.setdefault(name, []).append(value)
    except (ValueError, KeyError, AssertionError) as exc:  # multipart parser refusals
        raise PageError(400, "The form could not be read. Go back and try again.") from exc
    return out


FieldsDep = Annotated[Fields, Depends(read_fields)]


def safe_next(path: str | None) -> str:
    """Only a path inside the console (never another site) to return to after sign-in."""
    if path and path.startswith(f"{PREFIX}/") and not path.startswith("//") \
            and "\\" not in path and len(path) < 300:
        return path
    return f"{PREFIX}/"


@dataclass
class View:
    """A signed-in user's request: render pages, check rights."""

    console: Console
    request: Request
    session: Session
    fields: Fields = field(default_factory=Fields)  # the posted form, on a Posted view

    @property
    def principal(self) -> Principal:
        return self.session.principal

    @property
    def store(self) -> CentralStore:
        return self.console.store

    def _(self, message: str) -> str:
        return self.console.pages.gettext(self.console.pages.language(self.request), message)

    def render(self, name: str, context: Mapping[str, Any] | None = None, *,
               status: int = 200, nav: str = "") -> HTMLResponse:
        secret = self.session.csrf_secret
        return self.console.pages.response(self.request, name, {
            "user": self.principal, "nav": nav, "errors": None, "notice": None,
            "csrf": lambda action: csrf.token(secret, action),
            **(context or {})}, status=status)

    def notice(self, messages: Mapping[str, str]) -> str | None:
        """The translated notice for ``?done=KEY`` after a redirect (only known keys)."""
        key = self.request.query_params.get("done", "")
        return self._(messages[key]) if key in messages else None

    def audit(self, action: str, target: str, *, store_id: str | None = None,
              before: Any = None, after: Any = None) -> None:
        self.console.accounts.audit(self.principal.username, action, target,
                                    store_id=store_id, before=before, after=after)

    def need_store(self, store_id: str, *, change: bool) -> None:
        """403 unless the user may change (or, for ``change=False``, see) ``store_id``."""
        if change and not self.principal.can_change_store(store_id):
            raise PageError(403, self._("You cannot make changes in this store."))
        if not self.principal.can_see_store(store_id):
            raise PageError(404, self._("Page not found"))

    def need_admin(self) -> None:
        if not self.principal.is_admin:
            raise PageError(403, self._("Only an administrator can do this."))

    def need_member_rights(self) -> None:
        if not self.principal.can_change_members:
            raise PageError(403, self._("Your role can look but not change anything."))


def current_view(request: Request) -> View:
    console = console_of(request)
    session = console.accounts.session(request.cookies.get(COOKIE))
    if session is None:
        raise LoginRequired(request.url.path)
    return View(console, request, session)


def posted_view(request: Request, fields: FieldsDep,
                view: Annotated[View, Depends(current_view)]) -> View:
    """The view of a form post whose CSRF token matches its action path (else 403)."""
    if not csrf.valid(view.session.csrf_secret, request.url.path, fields.get(csrf.FIELD)):
        raise PageError(403, view._("This form has expired or did not come from this "
                                    "console. Go back, reload the page and try again."))
    view.fields = fields
    return view


ViewDep = Annotated[View, Depends(current_view)]
PostedDep = Annotated[View, Depends(posted_view)]


def redirect(path: str, notice: str | None = None) -> RedirectResponse:
    """303 to a page after a successful post (``notice`` is a key the page knows)."""
    target = path if notice is None else f"{path}?done={quote(notice)}"
    return RedirectResponse(target, status_code=303)


def error_page(request: Request, status: int, message: str) -> Response:
    console = console_of(request)
    pages = console.pages
    language = pages.language(request)
    titles = {400: N_("Sorry, there is a problem with the form"),
              403: N_("You cannot do this"), 404: N_("Page not found"),
              405: N_("Page not found"), 413: N_("The file is too big")}
    title = pages.gettext(language, titles.get(status, N_("Sorry, there is a problem")))
    session = console.accounts.session(request.cookies.get(COOKIE))
    secret = session.csrf_secret if session else ""
    return pages.response(request, "console/error.html", {
        "title": title, "message": message, "user": session.principal if session else None,
        "nav": "", "errors": None, "notice": None,
        "csrf": lambda action: csrf.token(secret, action)}, status=status)


def api_caller(request: Request) -> Principal | None:
    """The console user behind an admin API request's session cookie (None: no cookie).

    Same roles as the console: an administrator may do anything, a read-only user only
    read; a store manager is refused, as the admin API is not scoped to stores. A change
    (any method but GET/HEAD) also needs the ``X-Console-Api`` header, which no other
    site's page can add without a CORS preflight this server never allows.
    """
    from pos_loyalty.errors import AuthError

    token = request.cookies.get(API_COOKIE)
    console: Console | None = getattr(request.app.state, "console", None)
    if not token or console is None:
        return None
    session = console.accounts.session(token)
    if session is None:
        raise AuthError("the console session has ended: sign in again")
    p = session.principal
    reading = request.method in ("GET", "HEAD")
    if not (p.is_admin or (p.role == "readonly" and reading)):
        raise AuthError(f"a {p.role} console user cannot "
                        f"{'read' if reading else 'change'} this through the admin API",
                        status=403)
    if not reading and request.headers.get(API_HEADER) != "1":
        raise AuthError(f"a change through the admin API by console session needs the "
                        f"header {API_HEADER}: 1", status=403)
    return p


def audit_api(request: Request, actor: str) -> None:
    """One audit row for a change made through the admin API (by a console user, or
    ``admin-token``)."""
    console: Console = request.app.state.console
    route = request.scope.get("route")
    template = getattr(route, "path", request.url.path)
    console.accounts.audit(actor, f"api {request.method} {template}",
                           request.url.path, after=dict(request.query_params) or None)


def install_handlers(app: FastAPI) -> None:
    async def on_login(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        return RedirectResponse(f"{PREFIX}/login?next={quote(safe_next(exc.next_path))}",
                                status_code=303)

    async def on_page(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageError)
        from starlette.concurrency import run_in_threadpool

        response: Response = await run_in_threadpool(error_page, request, exc.status,
                                                     exc.message)
        return response

    app.add_exception_handler(LoginRequired, on_login)
    app.add_exception_handler(PageError, on_page)
