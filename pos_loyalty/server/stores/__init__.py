"""Stores and their event limits."""
