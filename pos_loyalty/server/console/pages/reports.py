"""The owner's reports as console pages (and as one standalone HTML file for the CLI).

Server-rendered like every console page; the charts are inline SVG drawn by
:mod:`pos_loyalty.insight.charts`. The page sends its own Content-Security-Policy: the
console's, plus the SHA-256 of exactly the inline ``<style>`` blocks it holds (the charts'
and the report layout's), so still no script and nothing from another site.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from pos_loyalty.errors import LoyaltyError
from pos_loyalty.insight import charts
from pos_loyalty.insight.report import Chart, Report
from pos_loyalty.server.console.web import INSIGHT, PREFIX, PageError, ViewDep
from pos_loyalty.server.sales import reports
from pos_loyalty.web import STATIC_DIR
from pos_loyalty.web.i18n import N_, Catalogs, Language
from pos_loyalty.web.pages import SECURITY_HEADERS, Pages

router = APIRouter(prefix=PREFIX)
TITLES: dict[str, str] = {
    "customers": N_("Customers"), "stages": N_("Journey stages"),
    "segments": N_("RFM segments"), "lapsed": N_("Lapsed regulars to call"),
    "nps": N_("Net Promoter Score"), "liability": N_("Points liability"),
    "cost": N_("Program cost against extra revenue"),
    "settlement": N_("Partner settlement"), "tags": N_("Product tag taps"),
    "all": N_("All reports"),
}


def _drawn(built: Sequence[Report], rtl: bool,
           tr: Callable[[str], str]) -> list[tuple[Report, list[str]]]:
    """Each report with its charts drawn, their words in the page's language."""
    out = []
    for r in built:
        drawn = []
        for c in r.charts:
            c = Chart(c.kind, tr(c.title), [tr(x) for x in c.labels],
                      [(tr(name), values) for name, values in c.series], c.key)
            drawn.append(charts.svg(c, rtl=rtl))
        out.append((r, drawn))
    return out


def _date(text: str, field: str, view: ViewDep) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise PageError(400, view._("Enter a date like 2026-11-30") + f" ({field})") from exc


@router.get("/reports")
def index(view: ViewDep) -> HTMLResponse:
    return view.render("reports/index.html", {"reports": list(TITLES.items())},
                       nav="reports")


@router.get("/reports/{name}")
def report_page(view: ViewDep, name: str, since: str = "", until: str = "",
                store: str = "") -> HTMLResponse:
    if name not in TITLES:
        raise PageError(404, view._("Page not found"))
    principal = view.principal
    if store and not principal.can_see_store(store):
        raise PageError(404, view._("Page not found"))
    stores = (store,) if store else (() if principal.sees_all_stores
                                     else tuple(sorted(principal.stores)))
    if not principal.sees_all_stores and not stores:
        raise PageError(403, view._("You cannot do this"))
    opts = reports.Options(since=_date(since, "since", view), until=_date(until, "until", view),
                           stores=stores)
    names = reports.NAMES if name == "all" else (name,)
    try:
        built = reports.build_all(view.store, opts, names)
    except LoyaltyError as exc:
        raise PageError(400, str(exc)) from exc
    known = principal.visible(reports.store_ids(view.store))
    language = view.console.pages.language(view.request)
    response = view.render("reports/page.html", {
        "heading": TITLES[name],
        "built": _drawn(built, language.direction == "rtl", view._),
        "opts": opts, "stores": known, "action": f"{PREFIX}/reports/{name}"}, nav="reports")
    body = bytes(response.body).decode()
    response.headers["Content-Security-Policy"] = csp(body)
    return response


def csp(html: str) -> str:
    """The console's policy with this page's own inline styles allowed by hash."""
    base = SECURITY_HEADERS["Content-Security-Policy"]
    hashes = " ".join(charts.style_hashes(html))
    return base.replace("style-src 'self'", f"style-src 'self' {hashes}".rstrip())


def standalone_html(built: Sequence[Report], lang: str = "en") -> str:
    """Reports as one self-contained HTML file (stylesheet inlined, charts inline): what
    ``pos-loyalty report NAME --format html`` writes."""
    from pos_loyalty.server.console.web import HERE as CONSOLE_DIR
    from pos_loyalty.web import LOCALE_DIR as WEB_LOCALE

    pages = Pages([REPORT_TEMPLATES, CONSOLE_DIR / "templates"],
                  Catalogs([REPORT_LOCALE, CONSOLE_DIR / "locale", WEB_LOCALE]),
                  globals={"home_url": "#"})
    language = Language(lang)
    name = built[0].name if len(built) == 1 else "all"
    html = pages.render(language, "reports/standalone.html", {
        "heading": TITLES.get(name, "All reports"),
        "built": _drawn(built, language.direction == "rtl",
                        lambda m: pages.gettext(language, m)), "errors": None,
        "notice": None})
    css = (STATIC_DIR / "web.css").read_text(encoding="utf-8")
    link = '<link rel="stylesheet" href="/static/web/web.css">'
    return html.replace(link, f"<style>{css}</style>", 1)


REPORT_TEMPLATES = INSIGHT / "templates"
REPORT_LOCALE = INSIGHT / "locale"
