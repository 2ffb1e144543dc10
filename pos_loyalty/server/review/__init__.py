"""Held events, integrity and reconciliation for store IT."""
