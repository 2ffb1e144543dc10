"""Identifiers: UUIDv7 event ids, time-ordered so ledger inserts stay index-friendly.

Python 3.11's ``uuid`` module has no uuid7 (added in 3.14); the layout is short enough
(RFC 9562 section 5.7) to build here rather than add a dependency.
"""

from __future__ import annotations

import os
import time
import uuid


def link_part(event_id: str) -> str:
    """What a receipt's visit link ends with for this earn event: its id without dashes."""
    return uuid.UUID(event_id).hex


def uuid7(unix_ms: int | None = None) -> uuid.UUID:
    """A version 7 UUID: 48-bit Unix milliseconds, then 74 random bits."""
    ms = int(time.time() * 1000) if unix_ms is None else unix_ms
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76  # version
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a, 12 bits
    value |= 0b10 << 62  # variant
    value |= rand & 0x3FFF_FFFF_FFFF_FFFF  # rand_b, 62 bits
    return uuid.UUID(int=value)
