"""Terminal enrollment: a one-time code in, the terminal's credential out."""

from __future__ import annotations

import math
import time

from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from pos_loyalty.errors import AuthError
from pos_loyalty.server.db import aware
from pos_loyalty.server.deps import StoreDep
from pos_loyalty.server.schemas import EnrollCreate, EnrollPublic, ErrorPublic
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
