"""The loyalty rules engine: pure functions from (member, basket, now, program) to a Quote."""

from pos_loyalty.rules.engine import quote
from pos_loyalty.rules.model import Basket, BasketLine, MemberView, Quote, QuoteLine
from pos_loyalty.rules.program import DEFAULT_PROGRAM, Program, load_program, parse_program

__all__ = [
    "DEFAULT_PROGRAM",
    "Basket",
    "BasketLine",
    "MemberView",
    "Program",
    "Quote",
    "QuoteLine",
    "load_program",
    "parse_program",
    "quote",
]
