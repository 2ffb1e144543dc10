"""Liveness and server time (no credential needed)."""

from __future__ import annotations

from fastapi import APIRouter

from pos_loyalty.server.db import aware, utcnow
from pos_loyalty.server.schemas import HealthPublic

router = APIRouter(tags=["health"])


@router.get("/v1/health", response_model=HealthPublic)
async def health() -> HealthPublic:
    """Answers on the event loop itself: busy worker threads cannot delay it."""
    return HealthPublic(status="ok", server_time=aware(utcnow()))
