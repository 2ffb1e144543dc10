"""Persistence: the terminal's local store (SQLite) and the SQLAlchemy models."""

from pos_loyalty.store.local import LocalStore, MemberRecord, RedeemFacts, SaleResult
from pos_loyalty.store.open_sales import OpenSales, SavedSale
from pos_loyalty.store.phone import TagCoupon, TagLink

__all__ = ["LocalStore", "MemberRecord", "OpenSales", "RedeemFacts", "SaleResult", "SavedSale",
           "TagCoupon", "TagLink"]
