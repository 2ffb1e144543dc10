"""Fleet health: every terminal's last heartbeat, per store, stale ones flagged first.

The heartbeat comes with each sync round (software and program version, reader and till
link state, outbox depth and its oldest unsent event, last successful sync, clock offset,
last error); a store manager sees only their stores' terminals.
"""

from __future__ import annotations

from itertools import groupby

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from pos_loyalty.server.console.web import PREFIX, ViewDep

router = APIRouter(prefix=PREFIX)
STALE_AFTER_S = 300  # as `admin terminal list`: no contact for 5 minutes is stale


@router.get("/fleet")
def fleet_page(view: ViewDep) -> HTMLResponse:
    p = view.principal
    rows = view.store.list_terminals(
        store_ids=None if p.sees_all_stores else sorted(p.stores),
        stale_after_s=STALE_AFTER_S)
    rows = [t for t in rows if t.status != "revoked"]
    stores = [(store, sorted(group, key=lambda t: (not t.stale, t.terminal_id)))
              for store, group in groupby(rows, key=lambda t: t.store_id)]
    return view.render("console/fleet.html", {
        "stores": stores, "stale": sum(t.stale for t in rows), "total": len(rows),
        "stale_minutes": STALE_AFTER_S // 60}, nav="fleet")
