"""The audit log: who changed what, when, before and after (newest first)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from pos_loyalty.server.console.web import PREFIX, ViewDep

router = APIRouter(prefix=PREFIX)
PAGE = 100


@router.get("/audit")
def audit_page(view: ViewDep, before: str = "") -> HTMLResponse:
    rows = view.console.accounts.audit_log(view.principal, limit=PAGE,
                                           before_id=before[:36] or None)
    return view.render("console/audit.html", {
        "rows": rows, "older": rows[-1].audit_id if len(rows) == PAGE else None,
    }, nav="audit")
