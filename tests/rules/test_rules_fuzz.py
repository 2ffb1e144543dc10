"""Fuzzing the parsers of outside input: program text, basket and member JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pos_loyalty.errors import ConfigError, RulesError
from pos_loyalty.rules import Program, load_program, parse_program, parse_sales, replay
from pos_loyalty.rules.model import Basket, MemberView, basket_from_dict, member_from_dict

EXAMPLES = Path(__file__).parents[2] / "examples" / "programs"
TEXTS = [p.read_text() for p in sorted(EXAMPLES.glob("*.toml"))]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
KEYS = ["member_id", "balance", "tier", "stamps", "coupons", "credits", "lots", "claims",
        "segments", "birthday", "period_start", "lines", "sku", "qty", "unit_price",
        "redeem_points", "merchant_id", "attributes"]
shaped = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6)


class TestProgramFuzz:
    """Any text is a program or a ConfigError, never another exception."""

    @settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
    @given(st.sampled_from(TEXTS), st.integers(0, 5000), st.integers(0, 40), st.text(max_size=20))
    def test_mutated_examples(self, text: str, pos: int, cut: int, insert: str) -> None:
        """Examples with a slice replaced by random text parse or fail with ConfigError."""
        pos = pos % (len(text) + 1)
        mutated = text[:pos] + insert + text[pos + cut:]
        try:
            p = parse_program(mutated, path="fuzz.toml")
        except ConfigError as exc:
            assert str(exc).startswith("fuzz.toml")
        else:
            assert isinstance(p, Program)

    @settings(max_examples=200)
    @given(st.text(max_size=200))
    def test_arbitrary_text(self, text: str) -> None:
        """Arbitrary text parses or fails with ConfigError."""
        try:
            parse_program(text, path="fuzz.toml")
        except ConfigError as exc:
            assert exc.path == "fuzz.toml"


class TestJsonFuzz:
    """Any JSON value is a basket / member or a RulesError."""

    @settings(max_examples=300)
    @given(json_values | shaped)
    def test_basket(self, data: Any) -> None:
        """basket_from_dict never raises anything but RulesError."""
        json.dumps(data)
        try:
            assert isinstance(basket_from_dict(data), Basket)
        except RulesError as exc:
            assert str(exc)

    @settings(max_examples=300)
    @given(json_values | shaped)
    def test_member(self, data: Any) -> None:
        """member_from_dict never raises anything but RulesError."""
        try:
            assert isinstance(member_from_dict(data), MemberView)
        except RulesError as exc:
            assert str(exc)


SALES_CSV = ("txn_id,time,sku,qty,unit_price,category,member_id\n"
             "S1,2026-03-11T09:00,latte,2,350,coffee,M1\n"
             "S1,2026-03-11T09:00,cake,1,280,pastry,M1\n"
             "S2,2026-03-14T10:30,beans,1,1800,beans,\n")
SALES_JSONL = ('{"txn_id": "S1", "time": "2026-03-11T09:00", "lines": [{"sku": "a", "qty": 1, '
               '"unit_price": 100, "category": "x"}], "member": {"member_id": "M1"}}\n')
CAFE = load_program(EXAMPLES / "cafe.toml")


class TestSalesFuzz:
    """A sales file from outside either replays or is refused with a RulesError."""

    @settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
    @given(st.sampled_from([("csv", SALES_CSV), ("jsonl", SALES_JSONL)]),
           st.integers(0, 400), st.integers(0, 30), st.text(max_size=20))
    def test_mutated_sales(self, sample: tuple[str, str], pos: int, cut: int,
                           insert: str) -> None:
        """Cutting and inserting anywhere gives a report or a RulesError naming the line."""
        fmt, text = sample
        text = text[:pos] + insert + text[pos + cut:]
        try:
            replay(parse_sales(text.splitlines(keepends=True), fmt,  # type: ignore[arg-type]
                               CAFE, source="s"), CAFE)
        except RulesError as exc:
            assert str(exc).startswith("s:")
