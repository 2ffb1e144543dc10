"""Ledger push: checked batch insert with a per-event answer and the acked sequence."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from starlette.concurrency import run_in_threadpool

from pos_loyalty.server.db import aware
from pos_loyalty.server.deps import StoreDep, TerminalDep
from pos_loyalty.server.ledger import holds
from pos_loyalty.server.ledger.queries import EventIn
from pos_loyalty.server.schemas import (
    MAX_POINTS,
    TEXT_PATTERN,
    ErrorPublic,
    EventId,
    Id,
    PushCreate,
    PushPublic,
)

router = APIRouter(tags=["ledger"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorPublic} for code in (401, 403, 409, 413, 422)}


@router.post(
    "/v1/ledger/push", response_model=PushPublic,
    responses={401: {"model": ErrorPublic}, 403: {"model": ErrorPublic},
               408: {"model": ErrorPublic}, 413: {"model": ErrorPublic},
               422: {"model": ErrorPublic}},
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/PushCreate"}}}}},
)
async def push(request: Request, auth: TerminalDep, store: StoreDep) -> Response:
    """Store a batch of events; the credential is checked before the body is parsed.

    Every event is answered: stored, held (stored, not applied, with a reason), duplicate
    or conflict. See docs/sync.md for the rules.
    """
    raw = await request.body()
    try:
        body = PushCreate.model_validate_json(raw)
    except ValidationError as exc:
        raise _invalid(exc) from exc
    events = [EventIn(
        event_id=e.event_id, terminal_id=e.terminal_id, terminal_seq=e.terminal_seq,
        member_id=e.member_id, kind=e.kind, points=e.points, txn_ref=e.txn_ref,
        terminal_time=e.terminal_time, offline=e.offline,
    ) for e in body.events]
    out = await run_in_threadpool(store.push, auth, events,
                                  clock_offset_ms=body.clock_offset_ms)
    # Shaped as PushPublic; serialised directly, batches are large and this path is hot.
    body_out = {
        "results": [{"event_id": r.event_id, "terminal_seq": r.terminal_seq,
                     "status": r.status, "flags": r.flags, "reason": r.reason}
                    for r in out.results],
        "acked_seq": out.acked_seq, "overdrafts": out.overdrafts, "held": out.held,
        "conflicts": out.conflicts, "server_time": aware(out.server_time).isoformat(),
    }
    return Response(json.dumps(body_out, separators=(",", ":")), media_type="application/json")


def _invalid(exc: ValidationError) -> Exception:
    from fastapi.exceptions import RequestValidationError

    return RequestValidationError(exc.errors(include_url=False, include_input=False))


class RedeemHoldCreate(BaseModel):
    """A redemption the till asked for, put to central while it is reachable."""

    model_config = ConfigDict(extra="forbid", strict=True)
    hold_id: EventId = Field(description="The event_id the sale's redeem event will carry.")
    member_id: Id
    points: Annotated[int, Field(ge=1, le=MAX_POINTS)]
    txn_ref: Annotated[str, StringConstraints(max_length=140, pattern=TEXT_PATTERN)] = ""
    replaces: EventId | None = Field(None, description=(
        "The sale's earlier hold: released if this one is confirmed, and its points count "
        "as available meanwhile."))


class RedeemHoldPublic(BaseModel):
    hold_id: str
    status: str = Field(description="confirmed (the points are held) or refused.")
    points: int
    balance: int = Field(description="The member's balance at central.")
    available: int = Field(description="What the member may still spend after this.")
    reason: str = Field("", description="Why a redemption is refused, for the cashier.")
    server_time: datetime


class RedeemReleaseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    hold_id: EventId


class RedeemReleasePublic(BaseModel):
    released: bool = Field(description="False if the hold was used, released or unknown.")


@router.post("/v1/redeem/hold", response_model=RedeemHoldPublic, responses=_ERRORS)
async def hold(body: RedeemHoldCreate, auth: TerminalDep,
               store: StoreDep) -> RedeemHoldPublic:
    """Confirm a redemption against the member's balance at central and hold the points
    for the sale's redeem event (see docs/sync.md, "Online redemption")."""
    got = await run_in_threadpool(holds.confirm, store, auth, hold_id=body.hold_id,
                                  member_id=body.member_id, points=body.points,
                                  txn_ref=body.txn_ref, replaces=body.replaces)
    return RedeemHoldPublic(
        hold_id=got.hold_id, status="confirmed" if got.confirmed else "refused",
        points=got.points, balance=got.balance, available=got.available, reason=got.reason,
        server_time=aware(store.clock()))


@router.post("/v1/redeem/release", response_model=RedeemReleasePublic, responses=_ERRORS)
async def release(body: RedeemReleaseCreate, auth: TerminalDep,
                  store: StoreDep) -> RedeemReleasePublic:
    """Give back the points of a hold whose sale was voided or whose redemption changed."""
    done = await run_in_threadpool(holds.release, store, auth, body.hold_id)
    return RedeemReleasePublic(released=done)
