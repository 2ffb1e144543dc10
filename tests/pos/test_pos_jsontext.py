"""Peer JSON is measured before it is parsed: deep nesting is refused, never recursed into."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pos_loyalty.pos.jsontext import JsonTextError, loads, nesting_depth

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab\u00e9'),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=3), kids,
                                                              max_size=3),
    max_leaves=30)


def depth(v: Any) -> int:
    if isinstance(v, list):
        return 1 + max((depth(x) for x in v), default=0)
    if isinstance(v, dict):
        return 1 + max((depth(x) for x in v.values()), default=0)
    return 0


class TestDepth:
    @given(values)
    def test_depth_matches_the_parsed_value(self, v: Any) -> None:
        """Brackets inside strings (escaped quotes included) never count toward the depth."""
        for ascii_only in (True, False):
            payload = json.dumps(v, ensure_ascii=ascii_only).encode()
            assert nesting_depth(payload) == depth(v)

    @given(values)
    def test_shallow_values_parse_deep_ones_are_refused(self, v: Any) -> None:
        """loads() returns the value within the limit and refuses it beyond."""
        payload = json.dumps(v).encode()
        if depth(v) <= 3:
            assert loads(payload, max_depth=3) == v
        else:
            with pytest.raises(JsonTextError, match="nested deeper than 3"):
                loads(payload, max_depth=3)

    def test_a_thousand_arrays_in_a_frame(self) -> None:
        """The crafted payload that used to raise RecursionError is a plain refusal."""
        with pytest.raises(JsonTextError, match="nested deeper"):
            loads(b"[" * 1020 + b"]" * 1020)

    @given(st.binary(max_size=200))
    def test_any_bytes_parse_or_raise_our_error(self, data: bytes) -> None:
        """Nothing but JsonTextError leaves loads()."""
        try:
            loads(data)
        except JsonTextError as exc:
            assert str(exc)
