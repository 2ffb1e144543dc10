"""The console's pages, one module per resource; each exposes ``router``."""

from __future__ import annotations

from pos_loyalty.server.console.pages import (
    audit,
    auth,
    catalog,
    fleet,
    held,
    home,
    members,
    programs,
    reports,
    stores,
    users,
)

# one line per page module: other pages append here
ROUTERS = [
    auth.router,
    home.router,
    stores.router,
    held.router,
    members.router,
    programs.router,
    fleet.router,
    users.router,
    audit.router,
    reports.router,
    catalog.router,
]
