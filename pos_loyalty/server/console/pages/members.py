"""Members and cards, on the central functions that exist today: adjust a member's points
with a reason (a central ledger event) and block a lost card. Search, history, replace and
merge come with central's member queries (see docs/console.md)."""

from __future__ import annotations

import re

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from pos_loyalty.errors import StoreError
from pos_loyalty.server.console.web import PREFIX, PostedDep, View, ViewDep, redirect
from pos_loyalty.web.forms import FormErrors
from pos_loyalty.web.i18n import N_

router = APIRouter(prefix=PREFIX)
POINTS = re.compile(r"^[+-]?\d{1,9}$")
NOTICES = {"adjusted": N_("The points are adjusted and the ledger has the reason."),
           "blocked": N_("The card is blocked. Terminals refuse it after their next sync.")}


def _page(view: View, *, errors: FormErrors | None = None,
          values: dict[str, str] | None = None, status: int = 200) -> HTMLResponse:
    return view.render("console/members_basic.html", {
        "errors": errors, "values": values or {},
        "can_change": view.principal.can_change_members,
        "notice": None if errors else view.notice(NOTICES)}, status=status, nav="members")


@router.get("/members")
def members_page(view: ViewDep) -> HTMLResponse:
    return _page(view)


@router.post("/members/adjust")
def adjust(view: PostedDep) -> Response:
    view.need_member_rights()
    member_id = view.fields.get("member_id", 64)
    raw = view.fields.get("points", 20).replace(" ", "")
    reason = view.fields.get("reason", 140)
    errors = FormErrors()
    if not member_id:
        errors.add("member_id", view._("Enter the member number"))
    if not POINTS.match(raw) or int(raw) == 0:
        errors.add("points", view._("Enter a whole number of points other than 0, like 50 "
                                    "or -20"))
    if not reason:
        errors.add("reason", view._("Enter the reason for the adjustment"))
    before = 0
    if not errors:
        before = view.store.balance(member_id)
        try:
            view.store.adjust_points(member_id, int(raw), f"{reason} (by "
                                     f"{view.principal.username})")
        except StoreError as exc:
            errors.add("member_id", str(exc))
    if errors:
        return _page(view, errors=errors, values={"member_id": member_id, "points": raw,
                                                  "reason": reason}, status=400)
    view.audit("points.adjust", member_id, before={"balance": before},
               after={"balance": view.store.balance(member_id), "points": int(raw),
                      "reason": reason})
    return redirect(f"{PREFIX}/members", "adjusted")


@router.post("/members/block-card")
def block_card(view: PostedDep) -> Response:
    view.need_member_rights()
    card_id = view.fields.get("card_id", 64)
    errors = FormErrors()
    if not card_id:
        errors.add("card_id", view._("Enter the card number"))
    elif not view.store.set_card_status(card_id, "blocked"):
        errors.add("card_id", view._("There is no card with that number"))
    if errors:
        return _page(view, errors=errors, values={"card_id": card_id}, status=400)
    view.audit("card.block", card_id, after={"status": "blocked"})
    return redirect(f"{PREFIX}/members", "blocked")
