"""Ledger push: checked batch insert with a per-event answer and the acked sequence."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from pos_loyalty.server.db import aware
from pos_loyalty.server.deps import StoreDep, TerminalDep
from pos_loyalty.server.ledger.queries import EventIn
from pos_loyalty.server.schemas import (
    ErrorPublic,
    PushCreate,
    PushPublic,
)

router = APIRouter(tags=["ledger"])


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
