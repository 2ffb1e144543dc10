"""Loyalty programs."""
