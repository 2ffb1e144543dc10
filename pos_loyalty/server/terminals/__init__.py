"""Terminals of the stores: enrollment, credentials, health."""
