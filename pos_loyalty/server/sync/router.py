"""Delta pull: a horizon for the round, then pages of each entity by (xid, key) cursor."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from pos_loyalty.server.db import aware
from pos_loyalty.server.deps import SettingsDep, StoreDep, TerminalDep
from pos_loyalty.server.schemas import ErrorPublic, HorizonPublic, PullPublic
from pos_loyalty.server.sync.queries import ENTITIES, parse_cursor

router = APIRouter(tags=["sync"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorPublic} for code in (401, 403, 422)}


@router.get("/v1/sync/horizon", response_model=HorizonPublic, responses=_ERRORS)
async def horizon(auth: TerminalDep, store: StoreDep,
                  counts: bool = False) -> HorizonPublic:
    """The bound for this pull round; with ``counts`` also how many rows lie below it."""
    await run_in_threadpool(store.activate_programs)  # scheduled versions now due
    until = await run_in_threadpool(store.horizon)
    n = await run_in_threadpool(store.counts, until) if counts else None
    return HorizonPublic(until=until, counts=n, server_time=aware(store.clock()))


@router.get("/v1/sync/pull", response_model=PullPublic, responses=_ERRORS)
async def pull(
    auth: TerminalDep, store: StoreDep, settings: SettingsDep,
    entity: Annotated[str, Query(max_length=40, json_schema_extra={"enum": list(ENTITIES)})],
    until: Annotated[int, Query(ge=0, le=2**62)],
    after: Annotated[str, Query(max_length=100)] = "",
    limit: Annotated[int, Query(ge=1, le=50_000)] = 5000,
) -> Response:
    """Rows changed after ``after`` and stamped below ``until``, oldest first."""
    if entity not in ENTITIES:
        raise HTTPException(422, f"entity: must be one of {', '.join(ENTITIES)}")
    try:
        parse_cursor(after)
    except ValueError as exc:
        raise HTTPException(422, f"after: {exc}") from exc
    page = await run_in_threadpool(store.pull, auth, entity, after, until,
                                   min(limit, settings.max_pull_limit))
    body = {"entity": page.entity, "columns": list(page.columns), "rows": page.rows,
            "after": page.after, "more": page.more, "until": page.until,
            "server_time": aware(store.clock()).isoformat()}
    # Pages can hold tens of thousands of rows: serialise directly, skip re-validation.
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")
