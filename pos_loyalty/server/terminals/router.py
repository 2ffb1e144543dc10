"""Terminals: enrollment (a one-time code in, the credential out) and heartbeats."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, replace
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from pos_loyalty.errors import AuthError
from pos_loyalty.server.db import aware
from pos_loyalty.server.deps import AdminDep, StoreDep, TerminalDep
from pos_loyalty.server.logs import escape_controls
from pos_loyalty.server.schemas import (
    EnrollCreate,
    EnrollPublic,
    ErrorPublic,
    HeartbeatCreate,
    HeartbeatPublic,
)
from pos_loyalty.server.terminals.queries import Heartbeat
from pos_loyalty.server.throttle import FailureThrottle

router = APIRouter(tags=["enrollment"])


@router.post("/v1/enroll", response_model=EnrollPublic,
             responses={403: {"model": ErrorPublic}, 422: {"model": ErrorPublic},
                        429: {"model": ErrorPublic}})
async def enroll(request: Request, body: EnrollCreate, store: StoreDep) -> EnrollPublic:
    """Exchange the code from ``pos-loyalty admin terminal add`` for a credential (once).

    A client that sent too many wrong codes recently gets 429 with ``Retry-After``.
    """
    throttle: FailureThrottle = request.app.state.enroll_throttle
    client = request.client.host if request.client else "?"
    wait = throttle.retry_after(client, time.monotonic())
    if wait > 0:
        raise HTTPException(429, "too many failed enrollment attempts from this address; "
                            "retry later", headers={"Retry-After": str(math.ceil(wait))})
    try:
        e = await run_in_threadpool(store.enroll, body.code)
    except AuthError:
        throttle.failed(client, time.monotonic())
        raise
    return EnrollPublic(terminal_id=e.terminal_id, store_id=e.store_id,
                        credential=e.credential, server_time=aware(store.clock()))


@router.post("/v1/terminal/heartbeat", response_model=HeartbeatPublic, tags=["terminals"],
             responses={401: {"model": ErrorPublic}, 403: {"model": ErrorPublic},
                        422: {"model": ErrorPublic}})
async def heartbeat(body: HeartbeatCreate, auth: TerminalDep,
                    store: StoreDep) -> HeartbeatPublic:
    """Record the terminal's state (see ``pos-loyalty admin terminal list``)."""
    beat = Heartbeat(**body.model_dump())
    beat = replace(beat, last_error=escape_controls(beat.last_error)[:200])
    at = await run_in_threadpool(store.record_heartbeat, auth, beat)
    return HeartbeatPublic(server_time=aware(at))


@router.get("/v1/admin/terminals", tags=["admin: terminals"],
            responses={401: {"model": ErrorPublic}, 403: {"model": ErrorPublic}})
async def terminals(store: StoreDep, _admin: AdminDep,
                    stale_after_s: int = 300) -> dict[str, Any]:
    """Every terminal with its last heartbeat and a stale flag."""
    rows = await run_in_threadpool(lambda: store.list_terminals(stale_after_s=stale_after_s))
    return {"terminals": [asdict(r) for r in rows]}


@router.get("/v1/admin/terminals/{terminal_id}", tags=["admin: terminals"],
            responses={401: {"model": ErrorPublic}, 403: {"model": ErrorPublic},
                       404: {"model": ErrorPublic}})
async def terminal(terminal_id: str, store: StoreDep, _admin: AdminDep) -> dict[str, Any]:
    return asdict(await run_in_threadpool(store.terminal_health, terminal_id))
