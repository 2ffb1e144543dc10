"""Sales push: terminals' summaries of sales, refunds and voids, stored exactly once."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from pos_loyalty.server.db import aware
from pos_loyalty.server.deps import StoreDep, TerminalDep
from pos_loyalty.server.sales.schemas import SalesPushCreate, SalesPushPublic
from pos_loyalty.server.schemas import ErrorPublic

router = APIRouter(tags=["sales"])


@router.post(
    "/v1/sales/push", response_model=SalesPushPublic,
    responses={code: {"model": ErrorPublic} for code in (401, 403, 408, 413, 422)},
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/SalesPushCreate"}}}}},
)
async def push(request: Request, auth: TerminalDep, store: StoreDep) -> Response:
    """Store a batch of sale summaries; the credential is checked before the body is read.

    Each record is answered in order: stored, duplicate or conflict (see docs/reports.md).
    """
    raw = await request.body()
    try:
        body = SalesPushCreate.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False, include_input=False)) \
            from exc
    out = await run_in_threadpool(store.push_sales, auth, body.records)
    answer = {
        "results": [{"index": i, "status": s} for i, s in enumerate(out.statuses)],
        "stored": out.count("stored"), "duplicates": out.count("duplicate"),
        "conflicts": out.count("conflict"), "server_time": aware(out.server_time).isoformat()}
    return Response(json.dumps(answer, separators=(",", ":")), media_type="application/json")
