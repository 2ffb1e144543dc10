"""Members and cards: search, history, adjust with a reason, block a card."""

from __future__ import annotations

from fastapi import APIRouter

from pos_loyalty.server.console.web import PREFIX

router = APIRouter(prefix=PREFIX)
