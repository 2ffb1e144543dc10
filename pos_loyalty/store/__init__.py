"""Persistence: the terminal's local store (SQLite) and the SQLAlchemy models."""

from pos_loyalty.store.local import LocalStore, MemberRecord, RedeemFacts, SaleResult

__all__ = ["LocalStore", "MemberRecord", "RedeemFacts", "SaleResult"]
