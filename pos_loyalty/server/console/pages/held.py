"""Held events (release or reject, with a reason) and the reconciliation report."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from pos_loyalty.errors import StoreError
from pos_loyalty.server.console.web import PREFIX, PageError, PostedDep, ViewDep, redirect
from pos_loyalty.web.forms import FormErrors
from pos_loyalty.web.i18n import N_

router = APIRouter(prefix=PREFIX)
NOTICES = {"released": N_("The event is released and counts in the balance."),
           "rejected": N_("The event is rejected. It stays in the ledger and never counts.")}


def _held_page(view: ViewDep, *, errors: FormErrors | None = None, failed: str = "",
               reason: str = "", status: int = 200) -> HTMLResponse:
    rows = [h for h in view.store.held() if view.principal.can_see_store(h.store_id)]
    return view.render("console/held.html", {
        "rows": rows, "errors": errors, "failed": failed, "reason": reason,
        "notice": None if errors else view.notice(NOTICES),
        "can_change": {h.event_id: view.principal.can_change_store(h.store_id) for h in rows},
    }, status=status, nav="held")


@router.get("/held")
def held_page(view: ViewDep) -> HTMLResponse:
    return _held_page(view)


@router.post("/held/{event_id}")
def resolve(view: PostedDep, event_id: str) -> Response:
    rows = [h for h in view.store.held() if h.event_id == event_id]
    if not rows or not view.principal.can_see_store(rows[0].store_id):
        raise PageError(404, view._("Page not found"))
    row = rows[0]
    view.need_store(row.store_id, change=True)
    action = view.fields.get("action")
    reason = view.fields.get("reason")
    errors = FormErrors()
    field_id = f"reason-{event_id}"
    if action not in ("release", "reject"):
        raise PageError(400, view._("Choose release or reject."))
    if not reason:
        errors.add(field_id, view._("Enter why you release or reject this event"))
        return _held_page(view, errors=errors, failed=event_id, status=400)
    try:
        view.store.resolve_held(event_id, release=action == "release", note=reason)
    except StoreError as exc:
        errors.add(field_id, str(exc))
        return _held_page(view, errors=errors, failed=event_id, reason=reason, status=400)
    view.audit(f"held.{action}", event_id, store_id=row.store_id,
               before={"status": "held", "reason": row.reason, "member_id": row.member_id,
                       "points": row.points},
               after={"status": "applied" if action == "release" else "rejected",
                      "note": reason})
    return redirect(f"{PREFIX}/held", "released" if action == "release" else "rejected")


@router.get("/reconcile")
def reconcile_page(view: ViewDep) -> HTMLResponse:
    report = view.store.reconcile()
    p = view.principal
    visible_terminals = {t["terminal_id"] for t in view.store.terminals()
                         if p.can_see_store(t["store_id"])}
    return view.render("console/reconcile.html", {
        "overdrafts": [o for o in report.overdrafts if p.can_see_store(o.store_id)],
        "flagged": [f for f in report.flagged
                    if p.sees_all_stores or f.terminal_id in visible_terminals],
        "review": [r for r in report.review if p.can_see_store(r.store_id)],
    }, nav="reconcile")
