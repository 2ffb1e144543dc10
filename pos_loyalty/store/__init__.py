"""Persistence: SQLAlchemy models and the terminal's local store."""

from pos_loyalty.store.local import LocalStore, MemberRecord, SaleResult
from pos_loyalty.store.open_sales import OpenSales, SavedSale

__all__ = ["LocalStore", "MemberRecord", "OpenSales", "SaleResult", "SavedSale"]
