"""Rendering: one Jinja2 environment per language, HTML responses with strict headers.

An environment per language (not one whose gettext is swapped per request) keeps rendering
free of shared mutable state across threads; there are only a few languages. Templates are
looked up in the application's directories first, then in this package's (``web/base.html``,
``web/macros.html``), so an application extends the shared layout.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from pos_loyalty.web import STATIC_PATH, TEMPLATE_DIR
from pos_loyalty.web.i18n import Catalogs, Language

# Nothing from another site, no script at all, no framing; forms post only here.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "Vary": "Accept-Language, Cookie",
}


class Pages:
    """Templates and catalogs of one application (the console, the phone pages)."""

    def __init__(self, template_dirs: Sequence[Path], catalogs: Catalogs, *,
                 globals: Mapping[str, Any] | None = None) -> None:
        self.catalogs = catalogs
        self.loader = FileSystemLoader([*map(str, template_dirs), str(TEMPLATE_DIR)])
        self.globals = {"static": STATIC_PATH, **(globals or {})}
        self._envs: dict[str, Environment] = {}
        self._lock = threading.Lock()

    def environment(self, code: str) -> Environment:
        """The environment for language ``code`` (built once, then shared)."""
        with self._lock:
            env = self._envs.get(code)
            if env is None:
                env = Environment(loader=self.loader, autoescape=select_autoescape(default=True),
                                  undefined=StrictUndefined, extensions=["jinja2.ext.i18n"],
                                  trim_blocks=True, lstrip_blocks=True)
                env.install_gettext_translations(  # type: ignore[attr-defined]
                    self.catalogs.translations(code), newstyle=True)
                env.globals.update(self.globals)
                self._envs[code] = env
            return env

    def language(self, request: Request) -> Language:
        """The language this request's browser asks for, among the catalogs'."""
        return self.catalogs.negotiate(request.headers.get("accept-language"))

    def gettext(self, language: Language, message: str) -> str:
        """A message translated outside a template (flash notices, error reasons)."""
        return str(self.catalogs.translations(language.code).gettext(message))

    def render(self, language: Language, name: str, context: Mapping[str, Any]) -> str:
        template = self.environment(language.code).get_template(name)
        return template.render({"lang": language, **context})

    def response(self, request: Request, name: str, context: Mapping[str, Any] | None = None,
                 *, status: int = 200, headers: Mapping[str, str] | None = None) -> HTMLResponse:
        """The page ``name`` in the request's language, with the security headers."""
        language = self.language(request)
        body = self.render(language, name, {"request": request, **(context or {})})
        out = HTMLResponse(body, status_code=status, headers={**SECURITY_HEADERS,
                                                              **(headers or {})})
        out.headers["Content-Language"] = language.code
        return out
