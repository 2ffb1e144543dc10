"""Console accounts (administrators only): list, add, disable, enable."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from pos_loyalty.server.console.accounts import ROLES, AccountError
from pos_loyalty.server.console.web import PREFIX, PostedDep, ViewDep, redirect
from pos_loyalty.web.forms import FormErrors
from pos_loyalty.web.i18n import N_

router = APIRouter(prefix=PREFIX)
NOTICES = {"added": N_("The user is added. Give them their password in person."),
           "disabled": N_("The user is disabled and signed out."),
           "enabled": N_("The user can sign in again.")}


def _users_page(view: ViewDep, *, errors: FormErrors | None = None,
                values: dict[str, str] | None = None, status: int = 200) -> HTMLResponse:
    return view.render("console/users.html", {
        "users": view.console.accounts.users(), "errors": errors, "values": values or {},
        "roles": ROLES, "notice": None if errors else view.notice(NOTICES),
    }, status=status, nav="users")


@router.get("/users")
def users_page(view: ViewDep) -> HTMLResponse:
    view.need_admin()
    return _users_page(view)


@router.post("/users")
def add_user(view: PostedDep) -> Response:
    view.need_admin()
    f = view.fields
    values = {"username": f.get("username", 64), "display_name": f.get("display_name"),
              "role": f.get("role", 16), "stores": f.get("stores", 500)}
    password = f.get("password", 300)
    stores = [s for s in values["stores"].replace(",", " ").split() if s]
    errors = FormErrors()
    if not values["username"]:
        errors.add("username", view._("Enter a user name"))
    if values["role"] not in ROLES:
        errors.add("role", view._("Choose a role"))
    if not password:
        errors.add("password", view._("Enter a password"))
    if not errors:
        try:
            view.console.accounts.add_user(values["username"], password, values["role"],
                                           actor=view.principal.username, stores=stores,
                                           display_name=values["display_name"])
        except AccountError as exc:
            text = str(exc)
            where = ("password" if "password" in text else
                     "stores" if "store" in text else "username")
            errors.add(where, view._(text))
    if errors:
        return _users_page(view, errors=errors, values=values, status=400)
    return redirect(f"{PREFIX}/users", "added")


@router.post("/users/{username}/active")
def set_active(view: PostedDep, username: str) -> Response:
    view.need_admin()
    active = view.fields.get("active") == "yes"
    view.console.accounts.set_active(username, active, actor=view.principal.username)
    return redirect(f"{PREFIX}/users", "enabled" if active else "disabled")
