"""Terminals report the offers their sales used (see ``queries``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.concurrency import run_in_threadpool

from pos_loyalty.server.deps import StoreDep, TerminalDep
from pos_loyalty.server.offers.queries import MAX_USES, UseIn, record_uses
from pos_loyalty.server.schemas import ErrorPublic

router = APIRouter(tags=["offers"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorPublic} for code in (401, 403, 413, 422)}


class OfferUseCreate(BaseModel):
    """One use of an issued offer by a sale of this terminal."""

    model_config = ConfigDict(extra="forbid")
    issue_id: Annotated[str, StringConstraints(min_length=1, max_length=36)]
    txn_ref: Annotated[str, StringConstraints(min_length=1, max_length=140)]
    used_at: datetime
    discount: Annotated[int, Field(ge=0, le=10**12)]


class OfferUsesCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    uses: Annotated[list[OfferUseCreate], Field(max_length=MAX_USES)]


class OfferUsesPublic(BaseModel):
    results: list[str] = Field(description="Per use, in order: used, duplicate (already "
                               "recorded), conflict (used before elsewhere: held for "
                               "review, not counted), unknown (no such offer).")


def _naive_utc(t: datetime) -> datetime:
    return t if t.tzinfo is None else t.astimezone(UTC).replace(tzinfo=None)


@router.post("/v1/offers/uses", response_model=OfferUsesPublic, responses=_ERRORS)
async def push_uses(body: OfferUsesCreate, auth: TerminalDep,
                    store: StoreDep) -> OfferUsesPublic:
    """Record the offers this terminal's sales used: each offer counts once, chain-wide."""
    uses = [UseIn(u.issue_id, u.txn_ref, _naive_utc(u.used_at), u.discount)
            for u in body.uses]
    results = await run_in_threadpool(record_uses, store, auth, uses)
    return OfferUsesPublic(results=results)
