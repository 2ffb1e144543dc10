"""Programs: the versions (live per store, scheduled), a candidate checked with its line
errors, its diff in words and a dry run against the live program, then publish (now or at a
time, to the chain or chosen stores) and roll back to any earlier version.

The dry run replays the last N days (30 unless told) of the sales terminals pushed to
central, of the chosen store or the whole chain, or an uploaded sales file instead.
Publishing is refused unless this session was shown a dry run of that exact text: the
check page hands the publish form a proof, an HMAC of the text's SHA-256 under the session's
CSRF secret, which only a page rendered with the dry run's figures carries.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from pos_loyalty.errors import ConfigError, LoyaltyError
from pos_loyalty.rules import Program
from pos_loyalty.rules.replay import SalesFormat
from pos_loyalty.server.console.web import PREFIX, PageError, PostedDep, View, ViewDep, redirect
from pos_loyalty.server.programs import queries as programs
from pos_loyalty.server.programs.queries import DryRun, VersionRow
from pos_loyalty.web import csrf
from pos_loyalty.web.forms import FormErrors
from pos_loyalty.web.i18n import N_

router = APIRouter(prefix=PREFIX)
PAGE = f"{PREFIX}/programs"
MAX_PROGRAM = 256 * 1024
DAYS = 30  # central's sales a dry run replays unless told otherwise
MAX_DAYS = 366
NUMBER = re.compile(r"[0-9]{1,9}")  # ASCII digits only: str.isdigit() also passes "²"
NOTICES = {"published": N_("The program is published. Terminals take it up at their next "
                           "sync, never in the middle of a sale."),
           "scheduled": N_("The program is scheduled. Terminals take it up at its start time."),
           "rolledback": N_("The earlier version is live again, published as a new version.")}


def text_of(raw: str) -> str:
    """A program's text as posted: browsers send a textarea's lines with CRLF."""
    return raw.replace("\r\n", "\n").replace("\r", "\n").strip() + "\n"


def _proof_name(text: str) -> str:
    return f"dry-run:{hashlib.sha256(text.encode()).hexdigest()}"


def dry_run_proof(view: View, text: str) -> str:
    """What the publish form carries once a dry run of ``text`` has been shown."""
    return csrf.token(view.session.csrf_secret, _proof_name(text))


def visible_stores(view: View, versions: list[VersionRow] | None = None) -> list[str]:
    """The stores this user sees: those with terminals, their own, and those programs name
    (``versions``: the program versions, when the caller has them already)."""
    ids = {t["store_id"] for t in view.store.terminals()} | set(view.principal.stores)
    for v in view.store.program_versions() if versions is None else versions:
        ids.update(v.stores)
    return sorted(s for s in ids if view.principal.can_see_store(s))


def can_publish_to(view: View, stores: tuple[str, ...]) -> bool:
    """The whole chain: administrators only; chosen stores: whoever may change each."""
    if not stores:
        return view.principal.is_admin
    return all(view.principal.can_change_store(s) for s in stores)


def need_publish_rights(view: View, stores: tuple[str, ...]) -> None:
    """403 unless this user may publish to ``stores`` (none: the whole chain)."""
    if not can_publish_to(view, stores):
        raise PageError(403, view._("You cannot make changes in this store.") if stores
                        else view._("Only an administrator can publish to the whole chain."))


def _publish_choices(view: View, stores: list[str]) -> dict[str, Any]:
    """What the publish form offers: the stores this user may publish to, and the chain."""
    return {"publish_stores": [s for s in stores if view.principal.can_change_store(s)],
            "chain_ok": view.principal.is_admin}


def _version_visible(view: View, v: VersionRow) -> bool:
    return not v.stores or any(view.principal.can_see_store(s) for s in v.stores)


def _live(view: View, stores: list[str]) -> list[tuple[str, VersionRow | None]]:
    """("", the chain's live version), then each store's."""
    out: list[tuple[str, VersionRow | None]] = [("", view.store.live_program(None))]
    out += [(s, view.store.live_program(s)) for s in stores]
    return out


@router.get("/programs")
def programs_page(view: ViewDep) -> HTMLResponse:
    every = view.store.program_versions()
    stores = visible_stores(view, every)
    versions = [v for v in every if _version_visible(view, v)]
    return view.render("console/programs.html", {
        "versions": list(reversed(versions)), "live": _live(view, stores),
        "stores": stores, "errors": None, "values": {},
        "can_check": view.principal.can_change_members,
        "can_rollback": {v.version: can_publish_to(view, v.stores) for v in versions},
        "now": view.store.clock(), "notice": view.notice(NOTICES)}, nav="programs")


def _version(view: View, number: str) -> VersionRow:
    """A version this user may see, else 404."""
    try:
        v = view.store.program_version(int(number)) if NUMBER.fullmatch(number) else None
    except programs.ProgramError:
        v = None
    if v is None or not _version_visible(view, v):
        raise PageError(404, view._("Page not found"))
    return v


@router.get("/programs/{number}")
def version_page(view: ViewDep, number: str) -> HTMLResponse:
    v = _version(view, number)
    version = v.version
    changes: list[str] = []
    if version > 1:
        try:
            changes = view.store.diff_programs(version - 1, version)
        except LoyaltyError:
            changes = []
    return view.render("console/program_version.html", {
        "v": v, "changes": changes, "lines": v.body.splitlines(),
        "can_rollback": can_publish_to(view, v.stores)}, nav="programs")


def _sales(view: View, errors: FormErrors) -> tuple[list[str], SalesFormat, str] | None:
    """An uploaded sales file as lines and its format (by its first byte); None when no
    file came (the dry run then replays central's own sales)."""
    data = view.fields.files.get("sales_file")
    if data is None:
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        errors.add("sales_file", view._("The sales file is not UTF-8 text"))
        return None
    name = view.fields.filenames.get("sales_file", "sales")
    fmt: SalesFormat = "jsonl" if text.lstrip().startswith("{") else "csv"
    return text.splitlines(), fmt, name


def _days(view: View, errors: FormErrors) -> int:
    """How many days of central's sales the dry run replays (30 when left empty)."""
    raw = view.fields.get("days", 10) or str(DAYS)
    if not NUMBER.fullmatch(raw) or not 1 <= int(raw) <= MAX_DAYS:
        errors.add("days", view._("Enter a number of days from 1 to 366"))
        return DAYS
    return int(raw)


def _candidate(view: View, errors: FormErrors) -> str:
    """The program text: an uploaded file wins over the pasted text. Either is at most
    ``MAX_PROGRAM``, as the admin API takes it."""
    data = view.fields.files.get("program_file")
    if data is not None:
        try:
            raw = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            errors.add("body", view._("The program file is not UTF-8 text"))
            return ""
    else:
        got = view.fields.values.get("body")
        raw = got[0] if got else ""
    if len(raw) > MAX_PROGRAM:
        errors.add("body", view._("A program may be at most 256 KB"))
        return ""
    if not raw.strip():
        errors.add("body", view._("Paste the program's text or choose its file"))
        return ""
    return text_of(raw)


@router.post("/programs/check")
def check(view: PostedDep) -> Response:
    """Validate, diff against the live version, dry-run: one page of answers."""
    view.need_member_rights()
    stores = visible_stores(view)
    errors = FormErrors()
    text = _candidate(view, errors)
    store_id = view.fields.get("store", 64)
    if store_id and store_id not in stores:
        raise PageError(404, view._("Page not found"))
    program: Program | None = None
    error_line: int | None = None
    if text:
        try:
            program = programs.validate(text, "program")
        except ConfigError as exc:
            errors.add("body", str(exc))
            error_line = exc.line
    sales = _sales(view, errors)
    days = _days(view, errors)
    live_row = view.store.live_program(store_id or None)
    changes: list[str] = []
    run: DryRun | None = None
    if program is not None:
        changes = programs.diff(programs.rules_of(live_row), program)
        try:
            if sales is not None:
                lines, fmt, name = sales
                run = view.store.dry_run_program(text, lines, fmt, store_id=store_id or None,
                                                 source="program", sales_source=name)
            elif not errors:
                run = view.store.dry_run_program(text, None, days=days,
                                                 store_id=store_id or None, source="program")
        except LoyaltyError as exc:
            errors.add("sales_file", str(exc))
    return view.render("console/program_check.html", {
        "errors": errors or None, "text": text, "lines": text.splitlines(),
        "error_line": error_line, "program": program, "changes": changes, "run": run,
        "live_row": live_row, "store_id": store_id, "stores": stores, "days": days,
        "from_file": sales is not None, **_publish_choices(view, stores),
        "proof": dry_run_proof(view, text) if run is not None else "",
        "values": {}}, status=400 if errors else 200, nav="programs")


def _at(view: View, raw: str, errors: FormErrors) -> datetime | None:
    """A start time typed as UTC, "2026-12-01 06:00" or ISO 8601 (an offset is honoured)."""
    if not raw:
        return None
    try:
        t = datetime.fromisoformat(raw.replace(" ", "T", 1) if "T" not in raw else raw)
        return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t
    except (ValueError, OverflowError):  # OverflowError: an offset past year 1 or 9999
        errors.add("at", view._("Enter the start time like 2026-12-01 06:00 (UTC), or "
                                "leave it empty to publish now"))
        return None


@router.post("/programs/publish")
def publish(view: PostedDep) -> Response:
    view.need_member_rights()
    got = view.fields.values.get("body")
    text = text_of(got[0] if got else "")
    if not csrf.valid(view.session.csrf_secret, _proof_name(text),
                      view.fields.get("proof", 64)):
        raise PageError(400, view._("A program is published only after a dry run of that "
                                    "same text. Check it again."))
    stores = tuple(sorted(set(view.fields.getlist("stores"))))
    errors = FormErrors()
    if not stores and not view.principal.is_admin:
        errors.add("stores", view._("Choose at least one of your stores."))
    else:
        need_publish_rights(view, stores)
    raw_at = view.fields.get("at", 40)
    at = _at(view, raw_at, errors)
    note = view.fields.get("note", 200)
    if errors:
        return _publish_again(view, text, errors, {"stores": stores, "at": raw_at,
                                                   "note": note})
    try:
        v = view.store.publish_program(text, stores=stores, at=at, note=note,
                                       source="program")
    except LoyaltyError as exc:
        raise PageError(400, str(exc)) from exc
    view.audit("program.publish", f"version {v.version}",
               store_id=v.stores[0] if len(v.stores) == 1 else None,
               after=_summary(v))
    return redirect(PAGE, "published" if v.live else "scheduled")


def _publish_again(view: View, text: str, errors: FormErrors,
                   values: dict[str, Any]) -> HTMLResponse:
    """The publish form once more, with its errors and what was typed (the text keeps the
    proof of its dry run)."""
    try:
        name = programs.validate(text, "program").name
    except ConfigError:
        name = ""
    return view.render("console/program_publish.html", {
        "errors": errors, "values": values, "text": text, "program_name": name,
        "proof": dry_run_proof(view, text), **_publish_choices(view, visible_stores(view))},
        status=400, nav="programs")


def _summary(v: VersionRow) -> dict[str, Any]:
    return {"version": v.version, "name": v.name, "stores": list(v.stores) or "chain",
            "starts_at": v.starts_at.isoformat(timespec="seconds"), "note": v.note,
            "copied_from": v.copied_from}


@router.post("/programs/{number}/rollback")
def rollback(view: PostedDep, number: str) -> Response:
    """One step: the earlier version's text goes live now, to the stores it went to."""
    old = _version(view, number)
    version = old.version
    need_publish_rights(view, old.stores)
    before = {s or "chain": (r.version if r else None)
              for s, r in _live(view, list(old.stores))}
    v = view.store.rollback_program(version)
    view.audit("program.rollback", f"version {version}",
               store_id=v.stores[0] if len(v.stores) == 1 else None,
               before={"live": before}, after=_summary(v))
    return redirect(PAGE, "rolledback")
