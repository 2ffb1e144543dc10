"""Persistence: SQLAlchemy models and the terminal's local store."""

from pos_loyalty.store.local import LocalStore, MemberRecord, SaleResult

__all__ = ["LocalStore", "MemberRecord", "SaleResult"]
