"""Members and cards: search across all members, a member's cards and ledger history,
adjust points with a reason (a central ledger event), block a lost card or replace it with a
new one that keeps the balance, claim a card-first (anonymous) member, and merge two members
after a confirmation step."""

from __future__ import annotations

import re

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from pos_loyalty.errors import StoreError
from pos_loyalty.server.console.web import (
    PREFIX,
    PageError,
    PostedDep,
    View,
    ViewDep,
    redirect,
)
from pos_loyalty.server.members.queries import ID_RE, MemberDetail, MemberError
from pos_loyalty.web.forms import FormErrors
from pos_loyalty.web.i18n import N_

router = APIRouter(prefix=PREFIX)
POINTS = re.compile(r"^[+-]?\d{1,9}$")
NOTICES = {"adjusted": N_("The points are adjusted and the ledger has the reason."),
           "blocked": N_("The card is blocked. Terminals refuse it after their next sync."),
           "replaced": N_("The lost card is blocked and the new card carries the balance."),
           "claimed": N_("The member is claimed: name and consent are kept."),
           "merged": N_("The members are merged: cards and points moved to this member.")}
HISTORY = 50  # ledger rows on a member's page
SEARCH_LIMIT = 50  # members a search shows (bench/bench_member_search.py measures this)


def _page(view: View, *, errors: FormErrors | None = None,
          values: dict[str, str] | None = None, status: int = 200) -> HTMLResponse:
    query = view.request.query_params.get("q", "").strip()[:64]
    return view.render("console/members_basic.html", {
        "errors": errors, "values": values or {}, "q": query,
        "found": view.store.search_members(query, limit=SEARCH_LIMIT) if query else None,
        "can_change": view.principal.can_change_members,
        "notice": None if errors else view.notice(NOTICES)}, status=status, nav="members")


@router.get("/members")
def members_page(view: ViewDep) -> HTMLResponse:
    return _page(view)


def _member(view: View, member_id: str) -> MemberDetail:
    if not ID_RE.fullmatch(member_id):
        raise PageError(404, view._("Page not found"))
    try:
        return view.store.get_member(member_id, history=HISTORY)
    except MemberError as exc:
        raise PageError(404, view._("Page not found")) from exc


def _member_page(view: View, member: MemberDetail, *, errors: FormErrors | None = None,
                 values: dict[str, str] | None = None, status: int = 200) -> HTMLResponse:
    return view.render("console/member.html", {
        "member": member, "errors": errors, "values": values or {},
        "can_change": view.principal.can_change_members and member.status != "merged",
        "notice": None if errors else view.notice(NOTICES)}, status=status, nav="members")


@router.get("/members/{member_id}")
def member_page(view: ViewDep, member_id: str) -> HTMLResponse:
    return _member_page(view, _member(view, member_id))


@router.post("/members/{member_id}/replace-card")
def replace_card(view: PostedDep, member_id: str) -> Response:
    """Block the lost card and issue the new one to the same member: the balance, which
    belongs to the member, is on the new card at once."""
    view.need_member_rights()
    member = _member(view, member_id)
    lost = view.fields.get("lost_card", 64)
    new = view.fields.get("new_card", 64)
    errors = FormErrors()
    if lost not in {c.card_id for c in member.cards if c.status == "active"}:
        errors.add("lost_card", view._("Choose one of the member's active cards"))
    if not new:
        errors.add("new_card", view._("Enter the new card's number"))
    if not errors:
        try:
            view.store.replace_card(lost, new)
        except MemberError as exc:
            errors.add("new_card", str(exc))
    if errors:
        return _member_page(view, member, errors=errors,
                            values={"lost_card": lost, "new_card": new}, status=400)
    view.audit("card.replace", lost, before={"card": lost, "status": "active"},
               after={"member": member_id, "new_card": new, "balance": member.balance})
    return redirect(f"{PREFIX}/members/{member_id}", "replaced")


@router.post("/members/{member_id}/claim")
def claim(view: PostedDep, member_id: str) -> Response:
    """A card-first member gets a name and consent: no longer anonymous."""
    view.need_member_rights()
    member = _member(view, member_id)
    name = view.fields.get("display_name", 200)
    email = view.fields.get("email", 200)
    consent = view.fields.get("consent") == "yes"
    errors = FormErrors()
    if not name:
        errors.add("display_name", view._("Enter the member's name"))
    if email and ("@" not in email or " " in email):
        errors.add("email", view._("Enter an email address like name@example.com, or "
                                   "leave it empty"))
    if not consent:
        errors.add("consent", view._("The member must agree to the program's terms"))
    if errors:
        return _member_page(view, member, errors=errors,
                            values={"display_name": name, "email": email}, status=400)
    view.store.update_member(member_id, display_name=name, email=email or None, consent=True)
    view.audit("member.claim", member_id,
               before={"anonymous": member.anonymous, "display_name": member.display_name},
               after={"anonymous": False, "display_name": name, "consent": True})
    return redirect(f"{PREFIX}/members/{member_id}", "claimed")


@router.post("/members/{member_id}/merge")
def merge(view: PostedDep, member_id: str) -> Response:
    """Fold another member into this one. The first post shows both members and asks to
    confirm; only the confirming post (``confirm=yes``) merges."""
    view.need_member_rights()
    target = _member(view, member_id)
    source_id = view.fields.get("source", 64)
    errors = FormErrors()
    source: MemberDetail | None = None
    if source_id == member_id:
        errors.add("source", view._("A member cannot be merged into itself"))
    elif not source_id:
        errors.add("source", view._("Enter the number of the member to merge into this one"))
    else:
        try:
            source = view.store.get_member(source_id, history=0) \
                if ID_RE.fullmatch(source_id) else None
        except MemberError:
            source = None
        if source is None:
            errors.add("source", view._("There is no member with that number"))
        elif source.status == "merged":
            errors.add("source", view._("That member was already merged"))
    if errors or source is None:
        return _member_page(view, target, errors=errors, values={"source": source_id},
                            status=400)
    if view.fields.get("confirm") != "yes":
        return view.render("console/member_merge.html", {"target": target,
                                                         "source": source}, nav="members")
    try:
        moved = view.store.merge_members(source_id, member_id,
                                         actor=view.principal.username)
    except MemberError as exc:
        raise PageError(400, str(exc)) from exc
    view.audit("member.merge", source_id,
               before={"source_balance": source.balance, "target_balance": target.balance},
               after={"merged_into": member_id, "points_moved": moved,
                      "cards": [c.card_id for c in source.cards]})
    return redirect(f"{PREFIX}/members/{member_id}", "merged")


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
    back = f"{PREFIX}/members/{member_id}" if view.fields.get("from") == "member" \
        else f"{PREFIX}/members"
    return redirect(back, "adjusted")


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
