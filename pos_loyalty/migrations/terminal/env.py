"""Alembic environment for a terminal's local schema (SQLite, batch mode)."""

from __future__ import annotations

from alembic import context

from pos_loyalty.migrations import run_env
from pos_loyalty.store.models import Base

run_env(context, Base.metadata)
