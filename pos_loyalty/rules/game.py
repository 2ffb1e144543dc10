"""Instant-win draw after a sale: seeded, verifiable, within a prize budget. Pure.

The draw is HMAC-SHA256(seed, rule | pos | txn | member): the same sale always gets the
same roll, nobody can pick a roll without the seed, and an auditor given the seed (the
store publishes ``seed_commitment(seed)`` before the campaign) can recompute every draw.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from pos_loyalty.errors import RulesError
from pos_loyalty.rules.kinds import InstantWin
from pos_loyalty.rules.model import Quote
from pos_loyalty.rules.program import Program

ROLL_SPACE = 1_000_000


@dataclass(frozen=True)
class DrawResult:
    """The outcome of one draw and the digest that proves it."""

    rule: str
    pos_id: str
    txn_id: str
    member_id: str
    roll: int          # 0 .. 999_999
    prize: str | None
    value: int         # prize value in minor units (program cost)
    digest: str        # hex HMAC the roll came from
    text: str


def seed_commitment(seed: bytes) -> str:
    """What the store publishes before a campaign so the seed cannot be changed later."""
    return hashlib.sha256(b"pos-loyalty-seed-v1|" + seed).hexdigest()


def draw(program: Program, rule_id: str, seed: bytes, *, pos_id: str, txn_id: str,
         member_id: str, sale: Quote, awarded: Mapping[str, int] | None = None) -> DrawResult:
    """Play the game ``rule_id`` for a sale the quote made eligible (a ``game:`` perk).

    ``awarded`` counts prizes already given in the campaign; a prize whose budget is used
    up cannot be won (the roll is still recorded).
    """
    rule = program.rule(rule_id)
    if rule is None or not isinstance(rule, InstantWin):
        raise RulesError(f"no instant-win rule {rule_id!r} in program {program.name!r}")
    if not any(p.code == f"game:{rule_id}" for p in sale.perks):
        raise RulesError(f"this sale is not eligible for {rule.label!r}")
    if not seed:
        raise RulesError("an instant-win draw needs a non-empty seed")
    message = "|".join(("pos-loyalty-draw-v1", rule_id, pos_id, txn_id, member_id)).encode()
    digest = hmac.new(seed, message, hashlib.sha256).hexdigest()
    roll = int(digest[:16], 16) % ROLL_SPACE
    given = awarded or {}
    edge = 0
    for prize in rule.prizes:
        edge += ROLL_SPACE // prize.one_in
        if roll < edge:
            if prize.budget and given.get(prize.name, 0) >= prize.budget:
                return DrawResult(rule_id, pos_id, txn_id, member_id, roll, None, 0, digest,
                                  f"{prize.name}: all prizes already won")
            return DrawResult(rule_id, pos_id, txn_id, member_id, roll, prize.name,
                              prize.value, digest, f"You won: {prize.name}!")
    return DrawResult(rule_id, pos_id, txn_id, member_id, roll, None, 0, digest,
                      "No win this time")


def verify_draw(result: DrawResult, program: Program, seed: bytes, sale: Quote,
                awarded: Mapping[str, int] | None = None) -> bool:
    """True if ``result`` is exactly what the seed gives for that sale."""
    again = draw(program, result.rule, seed, pos_id=result.pos_id, txn_id=result.txn_id,
                 member_id=result.member_id, sale=sale, awarded=awarded)
    return hmac.compare_digest(again.digest, result.digest) and again == result
