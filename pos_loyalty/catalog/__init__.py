"""The product catalog store IT uploads: one folder per product code, read by the phone pages.

See :mod:`pos_loyalty.catalog.folder` for the format and ``docs/phone.md`` for an example.
"""
