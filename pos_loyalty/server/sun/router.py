"""SUN read counters: terminals report the counters they accepted (see ``queries``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.concurrency import run_in_threadpool

from pos_loyalty.server.deps import StoreDep, TerminalDep
from pos_loyalty.server.schemas import ErrorPublic
from pos_loyalty.server.sun.queries import COUNTER_MAX, MAX_COUNTERS, CounterIn, record_counters

router = APIRouter(tags=["sun"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorPublic} for code in (401, 403, 413, 422)}


class SunCounterCreate(BaseModel):
    """One read a terminal accepted: the tag's 7-byte UID and its read counter."""

    model_config = ConfigDict(extra="forbid", strict=True)
    uid: Annotated[str, StringConstraints(pattern=r"^[0-9A-F]{14}$")]
    counter: Annotated[int, Field(ge=0, le=COUNTER_MAX)]


class SunCountersCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    counters: Annotated[list[SunCounterCreate], Field(max_length=MAX_COUNTERS)]


class SunCountersPublic(BaseModel):
    raised: int = Field(description="How many tags' counters rose (others were known).")


@router.post("/v1/sun/counters", response_model=SunCountersPublic, responses=_ERRORS)
async def push_counters(body: SunCountersCreate, auth: TerminalDep,
                        store: StoreDep) -> SunCountersPublic:
    """Raise the chain's counter of each tag; every terminal pulls them back."""
    items = [CounterIn(c.uid, c.counter) for c in body.counters]
    raised = await run_in_threadpool(record_counters, store, auth, items)
    return SunCountersPublic(raised=raised)
