"""Liveness and server time (no credential needed)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from pos_loyalty.server.central import utcnow

router = APIRouter(tags=["health"])


@router.get("/v1/health")
def health() -> dict[str, Any]:
    return {"status": "ok", "server_time": utcnow().isoformat()}
