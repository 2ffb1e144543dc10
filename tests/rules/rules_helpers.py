"""Shared helpers for the rules engine tests (a uniquely named module, not a conftest,
so that other areas' test helpers can never shadow it)."""

from __future__ import annotations

import textwrap
from datetime import datetime

from pos_loyalty.rules import Basket, BasketLine, Program, parse_program

NOON = datetime(2026, 3, 11, 12, 0)  # a Wednesday

BASE = """
    [[rule]]
    id = "base"
    kind = "earn"
    label = "1 pt per 1.00"
    points = 1
    per = 100
"""
"""1 pt per 1.00 (rule id "base"), to start an inline program with."""

TIERS = BASE + """\
    [[rule]]
    id = "tiers"
    kind = "tiers"
    [[rule.levels]]
    name = "Red"
    [[rule.levels]]
    name = "Silver"
    min_spend = 50000
    earn_percent = 150
    [[rule.levels]]
    name = "Gold"
    min_spend = 150000
    earn_percent = 200
"""
"""1 pt per 1.00; Red, then Silver (+50%) from 500.00 and Gold (x2) from 1,500.00 spent."""


def program(text: str) -> Program:
    """A program from inline TOML."""
    return parse_program(textwrap.dedent(text), path="test.toml")


def basket(*lines: tuple[str, int, int, str], merchant: str = "", redeem: int = 0) -> Basket:
    """A basket from (sku, qty, unit_price, category) tuples."""
    return Basket(tuple(BasketLine(*ln) for ln in lines), merchant_id=merchant,
                  redeem_points=redeem)
