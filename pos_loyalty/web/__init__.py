"""Server-rendered pages shared by the store IT console and the customer's phone pages.

Nothing here knows about the central database: a user of this package brings its own
templates and catalogs and gets back

- :class:`pos_loyalty.web.pages.Pages`: one Jinja2 environment per language (autoescape on,
  gettext installed), a base layout with ``dir``/``lang`` set, form macros with a GOV.UK-style
  error summary, and HTML responses with strict security headers;
- :mod:`pos_loyalty.web.i18n`: ``Accept-Language`` negotiation over the compiled catalogs;
- :mod:`pos_loyalty.web.csrf`: a token per form, bound to the visitor's session secret;
- :mod:`pos_loyalty.web.forms`: the errors of a submitted form, in page order.

Pages work as plain HTML forms (no JavaScript) and load nothing from another site: the one
stylesheet is served from ``STATIC_DIR`` under :data:`STATIC_PATH`.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
TEMPLATE_DIR = HERE / "templates"
LOCALE_DIR = HERE / "locale"
STATIC_PATH = "/static/web"
