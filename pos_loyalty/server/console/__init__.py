"""The store IT console under ``/console/``: server-rendered pages over the central store.

:func:`install` adds the console's routes, its error pages and the shared stylesheet to the
central app. Page modules live in ``pages/`` (one per resource), templates in
``templates/console/``, the Hebrew catalog in ``locale/``. See docs/console.md.
"""

from __future__ import annotations

from fastapi import FastAPI

from pos_loyalty.server.console.web import Console, error_page, install_handlers

__all__ = ["Console", "error_page", "install"]


def install(app: FastAPI) -> Console:
    """Mount the console on ``app`` (whose ``state.store`` is the central store)."""
    from pos_loyalty.server.console.pages import ROUTERS

    console = Console(app.state.store, app.state.settings)
    app.state.console = console
    for router in ROUTERS:
        app.include_router(router, include_in_schema=False)
    install_handlers(app)
    return console
