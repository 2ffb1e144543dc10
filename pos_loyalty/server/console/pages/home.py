"""The console's first page: what needs store IT's attention, in the user's stores."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse

from pos_loyalty.server.console.web import PREFIX, ViewDep

router = APIRouter(prefix=PREFIX)


@router.get("")
def bare() -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}/", status_code=308)


@router.get("/")
def home(view: ViewDep) -> HTMLResponse:
    p = view.principal
    terminals = [t for t in view.store.terminals() if p.can_see_store(t["store_id"])]
    stores = sorted({t["store_id"] for t in terminals})
    held = [h for h in view.store.held() if p.can_see_store(h.store_id)]
    report = view.store.reconcile()
    overdrafts = [o for o in report.overdrafts if p.can_see_store(o.store_id)]
    review = [r for r in report.review if p.can_see_store(r.store_id)]
    return view.render("console/home.html", {
        "stores": stores,
        "terminals": len(terminals),
        "active": sum(1 for t in terminals if t["status"] == "active"),
        "held": len(held), "overdrafts": len(overdrafts), "review": len(review),
    }, nav="home")
