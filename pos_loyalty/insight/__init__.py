"""Insight for the owner: pure rules over members' purchase histories (no I/O here)."""
