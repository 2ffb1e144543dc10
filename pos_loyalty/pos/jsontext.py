"""JSON from the peer, parsed only after its nesting depth is known to be small.

``json.loads`` recurses once per nested array or object; a payload of a thousand ``[`` (which
fits in a 2048-byte frame) raises RecursionError deep inside it, an error no caller expects.
Every payload the peer sends (hello, NAK, message) goes through :func:`loads` instead, which
measures the depth with two regular-expression passes (strings removed, then brackets
counted) and refuses anything deeper than the protocol ever needs. Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

MAX_DEPTH: Final = 8
"""Deepest nesting any v1 payload needs is 3 (message -> lines -> line); 8 leaves room."""

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


class JsonTextError(ValueError):
    """The payload is not JSON we accept; the text says why (for a NAK or an error reply)."""


def nesting_depth(payload: bytes) -> int:
    """The deepest bracket nesting of ``payload`` outside strings (0 for a scalar)."""
    depth = deepest = 0
    for m in _BRACKET.finditer(_STRING.sub(b"", payload)):
        if m.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def loads(payload: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse UTF-8 JSON from the peer; JsonTextError if not UTF-8, not JSON, or too deep."""
    if payload.count(b"[") + payload.count(b"{") > max_depth and \
            nesting_depth(payload) > max_depth:
        raise JsonTextError(f"nested deeper than {max_depth} levels")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonTextError(f"not UTF-8: {exc.reason}") from exc
    try:
        return json.loads(text, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:
        raise JsonTextError(f"not JSON: {exc}") from exc
