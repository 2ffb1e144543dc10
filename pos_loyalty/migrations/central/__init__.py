"""Alembic migration scripts (shipped inside the package)."""
