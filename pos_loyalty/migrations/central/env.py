"""Alembic environment for the central server's schema."""

from __future__ import annotations

from alembic import context

from pos_loyalty.migrations import run_env
from pos_loyalty.store.central_models import CentralBase

run_env(context, CentralBase.metadata)
