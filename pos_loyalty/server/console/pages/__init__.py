"""The console's pages, one module per resource; each exposes ``router``."""

from __future__ import annotations

from pos_loyalty.server.console.pages import (
    audit,
    auth,
    catalog,
    held,
    home,
    members,
    reports,
    stores,
    users,
)

ROUTERS = [auth.router, home.router, stores.router, held.router, members.router,
           users.router, audit.router, reports.router, catalog.router]
