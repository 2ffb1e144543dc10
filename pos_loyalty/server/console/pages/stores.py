"""Stores and their terminals: health, enrollment with a one-time code, revocation."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from pos_loyalty.server.console.web import PREFIX, PageError, PostedDep, ViewDep, redirect
from pos_loyalty.web.forms import FormErrors
from pos_loyalty.web.i18n import N_

router = APIRouter(prefix=PREFIX)
ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
STALE = timedelta(minutes=15)  # no contact for this long: the terminal is flagged
NOTICES = {"revoked": N_("The terminal is revoked. Its next request will be refused.")}


def _terminals(view: ViewDep) -> list[dict[str, Any]]:
    now = view.store.clock()
    out = []
    for t in view.store.terminals():
        if not view.principal.can_see_store(t["store_id"]):
            continue
        seen = t["last_seen_at"]
        t["stale"] = t["status"] == "active" and (seen is None or now - seen > STALE)
        out.append(t)
    return out


def _stores_page(view: ViewDep, *, errors: FormErrors | None = None, store_id: str = "",
                 status: int = 200) -> HTMLResponse:
    terminals = _terminals(view)
    stores: dict[str, dict[str, int]] = {}
    for t in terminals:
        s = stores.setdefault(t["store_id"], {"terminals": 0, "active": 0, "stale": 0})
        s["terminals"] += 1
        s["active"] += t["status"] == "active"
        s["stale"] += t["stale"]
    for s_id in view.principal.stores:  # a manager's stores, even before their first terminal
        stores.setdefault(s_id, {"terminals": 0, "active": 0, "stale": 0})
    return view.render("console/stores.html", {
        "stores": sorted(stores.items()), "errors": errors, "store_id": store_id,
    }, status=status, nav="stores")


@router.get("/stores")
def stores_page(view: ViewDep) -> HTMLResponse:
    return _stores_page(view)


@router.get("/stores/{store_id}")
def store_page(view: ViewDep, store_id: str) -> HTMLResponse:
    view.need_store(store_id, change=False)
    terminals = [t for t in _terminals(view) if t["store_id"] == store_id]
    if not terminals and store_id not in view.principal.stores and not ID.match(store_id):
        raise PageError(404, view._("Page not found"))
    return view.render("console/store.html", {
        "store_id": store_id, "terminals": terminals,
        "can_change": view.principal.can_change_store(store_id),
        "notice": view.notice(NOTICES), "terminal_id": "",
    }, nav="stores")


def _enroll(view: PostedDep, store_id: str, terminal_id: str) -> HTMLResponse:
    view.need_store(store_id, change=True)
    tid, code = view.store.add_terminal(store_id, terminal_id=terminal_id or None)
    view.audit("terminal.add", tid, store_id=store_id, after={"status": "pending"})
    return view.render("console/enrolled.html", {
        "store_id": store_id, "terminal_id": tid, "code": code,
        "server_url": str(view.request.base_url).rstrip("/")}, nav="stores")


@router.post("/stores")
def add_store_terminal(view: PostedDep) -> Response:
    """An administrator enrolls the first terminal of a store (which makes the store)."""
    store_id = view.fields.get("store_id", 64)
    errors = FormErrors()
    if not ID.match(store_id):
        errors.add("store_id", view._("Enter a store id: letters, digits, '.', '_' or '-'"))
        return _stores_page(view, errors=errors, store_id=store_id, status=400)
    view.need_store(store_id, change=True)
    return _enroll(view, store_id, "")


@router.post("/stores/{store_id}/terminals")
def add_terminal(view: PostedDep, store_id: str) -> Response:
    view.need_store(store_id, change=True)
    terminal_id = view.fields.get("terminal_id", 64)
    if terminal_id and not ID.match(terminal_id):
        errors = FormErrors()
        errors.add("terminal_id", view._("A terminal id has letters, digits, '.', '_' or '-'; "
                                         "leave it empty to have one made"))
        terminals = [t for t in _terminals(view) if t["store_id"] == store_id]
        return view.render("console/store.html", {
            "store_id": store_id, "terminals": terminals, "can_change": True,
            "errors": errors, "terminal_id": terminal_id}, status=400, nav="stores")
    known = {t["terminal_id"] for t in view.store.terminals()}
    if terminal_id in known:
        errors = FormErrors()
        errors.add("terminal_id", view._("That terminal id is taken; choose another"))
        terminals = [t for t in _terminals(view) if t["store_id"] == store_id]
        return view.render("console/store.html", {
            "store_id": store_id, "terminals": terminals, "can_change": True,
            "errors": errors, "terminal_id": terminal_id}, status=400, nav="stores")
    return _enroll(view, store_id, terminal_id)


@router.post("/terminals/{terminal_id}/revoke")
def revoke(view: PostedDep, terminal_id: str) -> Response:
    found = [t for t in view.store.terminals() if t["terminal_id"] == terminal_id]
    if not found:
        raise PageError(404, view._("Page not found"))
    before = found[0]
    view.need_store(before["store_id"], change=True)
    view.store.revoke_terminal(terminal_id)
    view.audit("terminal.revoke", terminal_id, store_id=before["store_id"],
               before={"status": before["status"]}, after={"status": "revoked"})
    return redirect(f"{PREFIX}/stores/{before['store_id']}", "revoked")
