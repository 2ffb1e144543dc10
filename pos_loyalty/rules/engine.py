"""quote(): the pure heart of the rules engine. No I/O, no clock: time is an argument."""

from __future__ import annotations

from datetime import datetime

from pos_loyalty.rules.model import Basket, MemberView, Quote, QuoteLine
from pos_loyalty.rules.program import Program


def quote(member: MemberView, basket: Basket, now: datetime, program: Program) -> Quote:
    """What this member gets for this basket at this time, each line explained."""
    total = basket.total
    lines: list[QuoteLine] = []
    points = total // program.unit_minor * program.points_per_unit
    if points > 0:
        unit = f"{program.unit_minor // 100}.{program.unit_minor % 100:02d}"
        lines.append(
            QuoteLine(program.name, "points", points,
                      f"+{points} pts ({program.points_per_unit} per {unit})")
        )
    return Quote(lines=tuple(lines), basket_total=total)
