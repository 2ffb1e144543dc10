"""Terminal enrollment: a one-time code in, the terminal's credential out."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from pos_loyalty.server.deps import StoreDep
from pos_loyalty.server.schemas import EnrollCreate, EnrollPublic, ErrorPublic

router = APIRouter(tags=["enrollment"])


@router.post("/v1/enroll", response_model=EnrollPublic,
             responses={403: {"model": ErrorPublic}, 422: {"model": ErrorPublic}})
async def enroll(body: EnrollCreate, store: StoreDep) -> EnrollPublic:
    """Exchange the code from ``pos-loyalty admin terminal add`` for a credential (once)."""
    e = await run_in_threadpool(store.enroll, body.code)
    return EnrollPublic(terminal_id=e.terminal_id, store_id=e.store_id,
                        credential=e.credential, server_time=store.clock())
