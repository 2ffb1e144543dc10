"""Integer money arithmetic shared by the engine and the rule kinds. Pure."""

from __future__ import annotations

from itertools import accumulate, chain
from operator import sub

from pos_loyalty.rules.model import money

__all__ = ["allocate", "bp_text", "half_up", "money", "pct_text"]


def half_up(num: int, den: int) -> int:
    """num/den rounded half up (both non-negative)."""
    return (2 * num + den) // (2 * den)


def allocate(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` over ``weights`` by cumulative floor: parts sum to ``total`` exactly,
    each part is within 1 of its proportional share and never above its weight when
    ``total <= sum(weights)``. All-zero weights put everything on the first slot."""
    if not weights:
        return []
    cums = list(accumulate(weights))
    s = cums[-1]
    if s == 0:
        return [total] + [0] * (len(weights) - 1)
    if total == 0:
        return [0] * len(weights)
    marks = [total * c // s for c in cums]
    return list(map(sub, marks, chain((0,), marks)))


def pct_text(percent: int) -> str:
    """An earn percent as the till says it: 200 -> 'x2', 150 -> '+50%'."""
    if percent % 100 == 0:
        return f"x{percent // 100}"
    return f"+{percent - 100}%"


def bp_text(bp: int) -> str:
    """Basis points as a percentage: 1000 -> '10%', 1250 -> '12.5%'."""
    return f"{bp // 100}%" if bp % 100 == 0 else f"{bp / 100:g}%"
