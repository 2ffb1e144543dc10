"""The phone pages: ``/p/<product>`` (what a product tag opens), its visit page and forms;
``/m``, the member's own page.

``GET /p/<product>?<tag data>`` checks the tag (see ``verify``), records the tap (see
``queries``) and shows the product with what the tag proved. Genuine and signed taps get a
visit token (in the form actions, valid for an hour) with which the warranty and NPS forms
post; each post answers with a redirect to the visit page (``/p/<product>/t/<token>``).
Limits: page views per tag and per client address, form posts per client address (429).
Pages are plain HTML (no script, nothing from another site), English or Hebrew.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
import urllib.parse
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from babel.dates import format_date
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from pos_loyalty.catalog.folder import IMAGE_TYPES, Catalog
from pos_loyalty.errors import ConfigError
from pos_loyalty.nfc.cardformat import valid_card_id, valid_product
from pos_loyalty.nfc.diversify import tag_key
from pos_loyalty.nfc.producturl import TagKeys, prove
from pos_loyalty.nfc.sun import SunKeyEntry, check_sun_uri
from pos_loyalty.server.central import CentralStore
from pos_loyalty.server.config import PhoneConfig
from pos_loyalty.server.phone import members, queries, visits
from pos_loyalty.server.throttle import FailureThrottle
from pos_loyalty.web import LOCALE_DIR as WEB_LOCALE
from pos_loyalty.web import csrf
from pos_loyalty.web.forms import FormErrors, text
from pos_loyalty.web.i18n import N_, Catalogs
from pos_loyalty.web.pages import Pages

HERE = Path(__file__).resolve().parent
log = logging.getLogger("pos_loyalty.server.phone")
router = APIRouter(include_in_schema=False)
MAX_FORM_BYTES = 4096
_EMAIL_MAX = 254
_MEMBER_EMAIL_MAX = 200  # what a member's record holds


@dataclass
class Phone:
    """The phone pages' long-lived parts: keys, catalog, templates, throttles."""

    store: CentralStore
    config: PhoneConfig
    keys: TagKeys
    catalog: Catalog
    pages: Pages
    tag_views: FailureThrottle
    client_views: FailureThrottle
    client_posts: FailureThrottle
    member_failures: FailureThrottle

    @classmethod
    def build(cls, store: CentralStore, config: PhoneConfig) -> Phone:
        pages = Pages([HERE / "templates"], Catalogs([HERE / "locale", WEB_LOCALE]),
                      globals={"home_url": "#main", "format_date": _format_date})
        w = config.window_s
        return cls(store, config, TagKeys.build(config.sun, config.issuer_keys),
                   Catalog(config.catalog_dir), pages,
                   FailureThrottle(config.taps_per_tag, w),
                   FailureThrottle(config.taps_per_client, w),
                   FailureThrottle(config.posts_per_client, w),
                   FailureThrottle(config.card_failures, w))


def _format_date(when: date | datetime, code: str) -> str:
    """A date as the visitor's language writes it (e.g. 28 Feb 2027)."""
    day = when.date() if isinstance(when, datetime) else when
    return str(format_date(day, "medium", locale=code))


def install(app: FastAPI, store: CentralStore, config: PhoneConfig) -> None:
    from pos_loyalty.server.phone import till

    app.state.phone = Phone.build(store, config)
    app.include_router(router)
    app.include_router(till.router)
    if config.sun is not None and config.sun.member_url is not None:
        # the path the chain's NTAG 424 DNA member cards lead to opens the member's page
        path = urllib.parse.urlsplit(config.sun.member_url).path or "/"
        if path in ("/", "/m", "/m/me", "/m/logout") or path.startswith(("/p/", "/v1/")):
            raise ConfigError(f"the member cards' URL path {path} is one of central's own "
                              "pages: give member cards a path of their own (e.g. /m/c)",
                              path=config.source, key="sun.member_url")
        app.add_api_route(path, member_card_tap, methods=["GET"], include_in_schema=False)


def _phone(request: Request) -> Phone:
    phone: Phone = request.app.state.phone
    return phone


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def _limited(phone: Phone, request: Request, throttle: FailureThrottle,
             key: str) -> Response | None:
    """A 429 page if ``key`` used up its allowance, else count this use."""
    now = time.monotonic()
    wait = throttle.retry_after(key, now)
    if wait > 0:
        return _message(phone, request, 429, N_("Too many requests"),
                        N_("Please try again later."), {"Retry-After": str(int(wait) + 1)})
    throttle.failed(key, now)
    return None


def _message(phone: Phone, request: Request, status: int, title: str, body: str,
             headers: dict[str, str] | None = None) -> Response:
    lang = phone.pages.language(request)
    return phone.pages.response(request, "phone/message.html", {
        "title": phone.pages.gettext(lang, title), "body": phone.pages.gettext(lang, body),
        "errors": None, "notice": None}, status=status, headers=headers)


def _page(phone: Phone, request: Request, sku: str, v: queries.Visit, token: str | None, *,
          errors: FormErrors | None = None, values: dict[str, str] | None = None,
          notice: str | None = None, status: int = 200) -> Response:
    base = f"/p/{sku}/t/{token}" if token else None
    tokens = {}
    if token is not None:
        tokens = {name: csrf.token(token, f"{base}/{name}") for name in ("warranty", "nps")}
    lang = phone.pages.language(request)
    return phone.pages.response(request, "phone/product.html", {
        "sku": sku, "product": phone.catalog.product(sku), "visit": v, "base": base,
        "tokens": tokens, "errors": errors or FormErrors(), "values": values or {},
        "notice": phone.pages.gettext(lang, notice) if notice else None,
    }, status=status)


@router.get("/p/{sku}")
async def product_page(sku: str, request: Request) -> Response:
    """What a product tag opens: the content, and what the tag proved."""
    phone = _phone(request)
    if not valid_product(sku):
        return _message(phone, request, 404, N_("Page not found"),
                        N_("This link does not lead to a product."))
    limited = _limited(phone, request, phone.client_views, _client(request))
    if limited is not None:
        return limited
    proof = prove(sku, request.url.query, phone.keys)
    if proof.uid is not None:
        limited = _limited(phone, request, phone.tag_views, proof.uid)
        if limited is not None:
            return limited
    if proof.proof == "forged":
        log.warning("product tag %s refused: %s", sku, proof.reason)
    token = secrets.token_urlsafe(24)
    v = await run_in_threadpool(
        queries.record_tap, phone.store, sku, proof, token,
        coupon_percent=phone.config.coupon_percent, coupon_days=phone.config.coupon_days,
        engage_points=phone.config.points_for_engaging)
    return _page(phone, request, sku, v, token if v.result in ("genuine", "signed") else None)


@router.get("/p/{sku}/t/{token}")
async def visit_page(sku: str, token: str, request: Request, done: str = "") -> Response:
    """The page of one visit, shown again after a form was sent."""
    phone = _phone(request)
    v = await run_in_threadpool(queries.visit, phone.store, sku, token)
    if v is None:
        return _message(phone, request, 404, N_("This page has expired"),
                        N_("Tap the tag on the product again to open it."))
    notices = {"warranty": N_("Thank you: your product is registered."),
               "nps": N_("Thank you for your answer.")}
    return _page(phone, request, sku, v, token, notice=notices.get(done))


async def _read_form(phone: Phone, request: Request, *,
                     max_fields: int) -> dict[str, str] | Response:
    """A posted form's text fields; a body without a length or over ``MAX_FORM_BYTES`` is
    a 413 page before a byte of it is read (files are refused by the parser: a 400)."""
    length = request.headers.get("content-length", "")
    if not length.isdigit() or int(length) > MAX_FORM_BYTES:
        return _message(phone, request, 413, N_("Form too large"), N_("Please try again."))
    async with request.form(max_files=0, max_fields=max_fields) as form:
        return {k: v for k, v in form.items() if isinstance(v, str)}


async def _posted(request: Request, phone: Phone, sku: str, token: str,
                  form_name: str) -> tuple[queries.Visit, dict[str, str]] | Response:
    limited = _limited(phone, request, phone.client_posts, _client(request))
    if limited is not None:
        return limited
    fields = await _read_form(phone, request, max_fields=20)
    if isinstance(fields, Response):
        return fields
    action = f"/p/{sku}/t/{token}/{form_name}"
    if not csrf.valid(token, action, fields.get(csrf.FIELD)):
        return _message(phone, request, 400, N_("Form expired"),
                        N_("Tap the tag on the product again to open it."))
    v = await run_in_threadpool(queries.visit, phone.store, sku, token)
    if v is None or v.uid is None:
        return _message(phone, request, 404, N_("This page has expired"),
                        N_("Tap the tag on the product again to open it."))
    return v, fields


def _email_ok(email: str, limit: int) -> bool:
    """Looks like an address (something@domain.tld, no spaces) and fits ``limit``."""
    local, at, domain = email.partition("@")
    return bool(local and at and "." in domain) and len(email) <= limit and " " not in email


@router.post("/p/{sku}/t/{token}/warranty")
async def warranty(sku: str, token: str, request: Request) -> Response:
    """Register the item for its warranty (name, e-mail, optional date of purchase)."""
    phone = _phone(request)
    got = await _posted(request, phone, sku, token, "warranty")
    if isinstance(got, Response):
        return got
    v, fields = got
    errors = FormErrors()
    name = text(fields, "name")
    email = text(fields, "email", limit=_EMAIL_MAX + 1)
    when = text(fields, "purchased_on", limit=20)
    if not name:
        errors.add("name", N_("Enter your name"))
    if not _email_ok(email, _EMAIL_MAX):
        errors.add("email", N_("Enter an e-mail address like name@example.com"))
    purchased: date | None = None
    if when:
        try:
            purchased = date.fromisoformat(when)
        except ValueError:
            errors.add("purchased_on", N_("Enter the date as YYYY-MM-DD"))
        else:
            if purchased > phone.store.clock().date():
                errors.add("purchased_on", N_("The date of purchase cannot be in the future"))
    if errors:
        lang = phone.pages.language(request)
        translated = FormErrors({k: phone.pages.gettext(lang, m) for k, m in errors.items()})
        return _page(phone, request, sku, v, token, errors=translated, status=400,
                     values={"name": name, "email": email, "purchased_on": when})
    await run_in_threadpool(queries.register_product, phone.store, v, name, email, purchased)
    return RedirectResponse(f"/p/{sku}/t/{token}?done=warranty", status_code=303)


@router.post("/p/{sku}/t/{token}/nps")
async def nps(sku: str, token: str, request: Request) -> Response:
    """The 0-10 question with an optional comment."""
    phone = _phone(request)
    got = await _posted(request, phone, sku, token, "nps")
    if isinstance(got, Response):
        return got
    v, fields = got
    raw = fields.get("score", "")
    comment = text(fields, "comment", limit=1000)
    if not raw.isdigit() or not 0 <= int(raw) <= 10:
        lang = phone.pages.language(request)
        message = phone.pages.gettext(lang, N_("Choose a number from 0 to 10"))
        errors = FormErrors({"score": message})
        return _page(phone, request, sku, v, token, errors=errors, status=400,
                     values={"comment": comment})
    await run_in_threadpool(queries.answer_nps, phone.store, v, int(raw), comment)
    return RedirectResponse(f"/p/{sku}/t/{token}?done=nps", status_code=303)


@router.get("/p/{sku}/img/{name}")
async def image(sku: str, name: str, request: Request) -> Response:
    """An image of the product's catalog folder."""
    phone = _phone(request)
    product = await run_in_threadpool(phone.catalog.product, sku)
    path = product.images.get(name) if product is not None else None
    if path is None:
        return Response(status_code=404)
    media: Any = IMAGE_TYPES[path.suffix.lower()]
    return FileResponse(path, media_type=media, headers={
        "Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"})


# -- the member's own page ---------------------------------------------------------------------

MEMBER_COOKIE = "pl_member"
PRE_COOKIE = "pl_member_pre"  # CSRF secret of the sign-in form, before any session


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _sign_in_page(phone: Phone, request: Request, pre: str, *, card: str = "",
                  errors: FormErrors | None = None, status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    response = phone.pages.response(request, "phone/member_sign_in.html", {
        "token": csrf.token(pre, "/m"), "card": card, "errors": errors or FormErrors(),
        "notice": None}, status=status, headers=headers)
    response.set_cookie(PRE_COOKIE, pre, max_age=3600, path="/m", httponly=True,
                        samesite="strict", secure=_secure(request))
    return response


@router.get("/m")
async def member_sign_in(request: Request) -> Response:
    """Open your own page with your card number."""
    phone = _phone(request)
    return _sign_in_page(phone, request, request.cookies.get(PRE_COOKIE) or csrf.new_secret())


@router.post("/m")
async def member_sign_in_post(request: Request) -> Response:
    phone = _phone(request)
    pre = request.cookies.get(PRE_COOKIE) or ""
    client = _client(request)
    now = time.monotonic()
    lang = phone.pages.language(request)
    wait = phone.member_failures.retry_after(client, now)
    if wait > 0:
        errors = FormErrors({"card": phone.pages.gettext(
            lang, N_("Too many wrong card numbers. Please try again later."))})
        return _sign_in_page(phone, request, pre or csrf.new_secret(), errors=errors,
                             status=429, headers={"Retry-After": str(int(wait) + 1)})
    fields = await _read_form(phone, request, max_fields=10)
    if isinstance(fields, Response):
        return fields
    if not pre or not csrf.valid(pre, "/m", fields.get(csrf.FIELD)):
        return _sign_in_page(phone, request, csrf.new_secret(), status=400, errors=FormErrors(
            {"card": phone.pages.gettext(lang, N_("The form expired. Please try again."))}))
    card = text(fields, "card", limit=64).replace(" ", "").upper()
    member_id = (await run_in_threadpool(members.member_by_card, phone.store, card)
                 if valid_card_id(card) else None)
    if member_id is None:
        phone.member_failures.failed(client, now)
        errors = FormErrors({"card": phone.pages.gettext(
            lang, N_("We do not know this card number. Check it on your card."))})
        return _sign_in_page(phone, request, pre, card=card, errors=errors, status=400)
    return await _signed_in(phone, request, member_id)


async def member_card_tap(request: Request) -> Response:
    """A member's own NTAG 424 DNA card tapped on their phone: a fresh read opens their page."""
    phone = _phone(request)
    sun = phone.config.sun
    assert sun is not None and sun.member_url is not None
    limited = _limited(phone, request, phone.client_views, _client(request))
    if limited is not None:
        return limited
    entry = SunKeyEntry(sun.member_url, "member", sun.meta_key,
                        partial(tag_key, sun.file_master_key, system_id=sun.system_id))
    query = request.url.query
    identity = (check_sun_uri(f"{sun.member_url}?{query}", [entry])
                if len(query) <= 1024 else None)
    if identity is None or not identity.verified or identity.uid is None \
            or identity.counter is None:
        return _message(phone, request, 400, N_("We could not verify this card"),
                        N_("Enter your card number instead."))
    found = await run_in_threadpool(members.member_by_card_tap, phone.store, identity.uid,
                                    identity.counter, identity.card_id)
    if found is False:
        return _message(phone, request, 400, N_("This link was used before"),
                        N_("Tap your card again, or enter your card number."))
    if not isinstance(found, str):
        return _message(phone, request, 404, N_("We do not know this card"),
                        N_("Ask at the till to register it."))
    return await _signed_in(phone, request, found)


async def _signed_in(phone: Phone, request: Request, member_id: str) -> Response:
    token, expires = await run_in_threadpool(members.start_session, phone.store, member_id)
    response = RedirectResponse("/m/me", status_code=303)
    response.set_cookie(MEMBER_COOKIE, token, path="/m", httponly=True, samesite="lax",
                        secure=_secure(request),
                        max_age=int((expires - phone.store.clock()).total_seconds()))
    response.delete_cookie(PRE_COOKIE, path="/m")
    return response


@router.get("/m/me")
async def member_page(request: Request) -> Response:
    """Balance, tier and recent activity of the signed-in member."""
    phone = _phone(request)
    s = await run_in_threadpool(members.session, phone.store, request.cookies.get(MEMBER_COOKIE))
    if s is None:
        return RedirectResponse("/m", status_code=303)
    lang = phone.pages.language(request)
    notice = (phone.pages.gettext(lang, N_("Thank you: this card is now yours."))
              if request.query_params.get("done") == "claimed" else None)
    return await _member_page(phone, request, s, notice=notice)


async def _member_page(phone: Phone, request: Request, s: members.MemberSession, *,
                       notice: str | None = None, errors: FormErrors | None = None,
                       values: dict[str, str] | None = None, status: int = 200) -> Response:
    view = await run_in_threadpool(members.member_view, phone.store, s.member_id)
    kinds = {"earn": N_("Points earned"), "redeem": N_("Points spent"),
             "reversal": N_("Points returned"), "adjust": N_("Correction"),
             "expire": N_("Points expired")}
    return phone.pages.response(request, "phone/member.html", {
        "view": view, "kinds": kinds, "token": csrf.token(s.csrf_secret, "/m/logout"),
        "claim_token": csrf.token(s.csrf_secret, "/m/claim"), "values": values or {},
        "catalog": phone.catalog,
        "errors": errors or FormErrors(), "notice": notice}, status=status)


@router.post("/m/claim")
async def member_claim(request: Request) -> Response:
    """A card-first card's holder (signed in with its number or a fresh tap of it) makes
    it theirs: name, optional e-mail, consent to be kept on file."""
    phone = _phone(request)
    limited = _limited(phone, request, phone.client_posts, _client(request))
    if limited is not None:
        return limited
    s = await run_in_threadpool(members.session, phone.store, request.cookies.get(MEMBER_COOKIE))
    if s is None:
        return RedirectResponse("/m", status_code=303)
    fields = await _read_form(phone, request, max_fields=10)
    if isinstance(fields, Response):
        return fields
    if not csrf.valid(s.csrf_secret, "/m/claim", fields.get(csrf.FIELD)):
        return _message(phone, request, 400, N_("Form expired"), N_("Please try again."))
    name = text(fields, "name")
    email = text(fields, "email", limit=_MEMBER_EMAIL_MAX + 1)
    errors = FormErrors()
    if not name:
        errors.add("name", N_("Enter your name"))
    if email and not _email_ok(email, _MEMBER_EMAIL_MAX):
        errors.add("email", N_("Enter an e-mail address like name@example.com"))
    if fields.get("consent") != "yes":
        errors.add("consent", N_("Tick the box to agree, or leave the card as it is"))
    if errors:
        lang = phone.pages.language(request)
        translated = FormErrors({k: phone.pages.gettext(lang, m) for k, m in errors.items()})
        return await _member_page(phone, request, s, errors=translated, status=400,
                                  values={"name": name, "email": email})
    if not await run_in_threadpool(members.claim, phone.store, s.member_id, name, email):
        return _message(phone, request, 409, N_("This card is already yours"),
                        N_("Its details can be changed at the till."))
    return RedirectResponse("/m/me?done=claimed", status_code=303)


@router.post("/m/logout")
async def member_logout(request: Request) -> Response:
    phone = _phone(request)
    token = request.cookies.get(MEMBER_COOKIE)
    s = await run_in_threadpool(members.session, phone.store, token)
    if s is not None and token is not None:
        async with request.form(max_files=0, max_fields=5) as form:
            sent = form.get(csrf.FIELD)
        if not csrf.valid(s.csrf_secret, "/m/logout", sent if isinstance(sent, str) else None):
            return _message(phone, request, 400, N_("Form expired"), N_("Please try again."))
        await run_in_threadpool(members.end_session, phone.store, token)
    response = RedirectResponse("/m", status_code=303)
    response.delete_cookie(MEMBER_COOKIE, path="/m")
    return response


# -- one question about a visit (the receipt's link) -------------------------------------------


async def _visit_or_404(phone: Phone, request: Request,
                        link: str) -> visits.Visit | Response:
    event_id = visits.event_id_of(link)
    v = await run_in_threadpool(visits.visit, phone.store, event_id) if event_id else None
    if v is None:
        return _message(phone, request, 404, N_("Page not found"),
                        N_("This link is not known yet. Please try again tomorrow."))
    return v


def _visit_page(phone: Phone, request: Request, link: str, v: visits.Visit, *,
                errors: FormErrors | None = None, notice: str | None = None,
                status: int = 200) -> Response:
    action = f"/v/{link}"
    lang = phone.pages.language(request)
    return phone.pages.response(request, "phone/visit.html", {
        "visit": v, "action": action, "token": csrf.token(link, action),
        "account_token": csrf.token(link, f"{action}/account"),
        "errors": errors or FormErrors(), "values": {},
        "notice": phone.pages.gettext(lang, notice) if notice else None}, status=status)


@router.get("/v/{link}")
async def visit_question(link: str, request: Request, done: str = "") -> Response:
    """The receipt's link: one question about this visit."""
    phone = _phone(request)
    limited = _limited(phone, request, phone.client_views, _client(request))
    if limited is not None:
        return limited
    got = await _visit_or_404(phone, request, link)
    if isinstance(got, Response):
        return got
    return _visit_page(phone, request, link, got,
                       notice=N_("Thank you for your answer.") if done else None)


@router.post("/v/{link}")
async def visit_answer(link: str, request: Request) -> Response:
    phone = _phone(request)
    limited = _limited(phone, request, phone.client_posts, _client(request))
    if limited is not None:
        return limited
    fields = await _read_form(phone, request, max_fields=20)
    if isinstance(fields, Response):
        return fields
    if not csrf.valid(link, f"/v/{link}", fields.get(csrf.FIELD)):
        return _message(phone, request, 400, N_("Form expired"), N_("Please try again."))
    got = await _visit_or_404(phone, request, link)
    if isinstance(got, Response):
        return got
    raw = fields.get("score", "")
    if not re.fullmatch(r"[0-9]{1,2}", raw) or int(raw) > 10:  # not isdigit(): "²" is one
        lang = phone.pages.language(request)
        message = phone.pages.gettext(lang, N_("Choose a number from 0 to 10"))
        return _visit_page(phone, request, link, got, errors=FormErrors({"score": message}),
                           status=400)
    await run_in_threadpool(visits.answer, phone.store, got, int(raw),
                            text(fields, "comment", limit=1000))
    return RedirectResponse(f"/v/{link}?done=1", status_code=303)


RECEIPT_DAYS = 30  # a receipt's link opens the member's account this long after the sale


@router.post("/v/{link}/account")
async def visit_account(link: str, request: Request) -> Response:
    """The receipt is something only the buyer holds: it opens their account for a while."""
    phone = _phone(request)
    limited = _limited(phone, request, phone.client_posts, _client(request))
    if limited is not None:
        return limited
    fields = await _read_form(phone, request, max_fields=5)
    if isinstance(fields, Response):
        return fields
    action = f"/v/{link}/account"
    if not csrf.valid(link, action, fields.get(csrf.FIELD)):
        return _message(phone, request, 400, N_("Form expired"), N_("Please try again."))
    got = await _visit_or_404(phone, request, link)
    if isinstance(got, Response):
        return got
    if got.at < phone.store.clock() - timedelta(days=RECEIPT_DAYS):
        return _message(phone, request, 403, N_("This receipt is too old"),
                        N_("Open your account with your card number instead."))
    return await _signed_in(phone, request, got.member_id)
