"""Sales made the way ``pos-loyalty run`` makes them: a tap, then till requests, handled by
the daemon's TerminalService on a real LocalStore (no store shortcut a till cannot take)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from pos_loyalty.nfc.events import TapEvent
from pos_loyalty.pos.messages import Message, message_from_dict
from pos_loyalty.rules import MemberView
from pos_loyalty.rules.parse import parse_text
from pos_loyalty.rules.program import Program
from pos_loyalty.store.engine_state import encode_state
from pos_loyalty.store.local import LocalStore
from pos_loyalty.store.models import Member
from pos_loyalty.terminal.service import TerminalService

REDEEM_ONLY_TOML = '''[program]
name = "Redeem only"
[redemption]
points = 100
value = 100
min_points = 1
max_percent = 100
'''
"""A program file that earns nothing and lets any points be redeemed at 1 pt = 0.01."""
REDEEM_ONLY: Program = parse_text(REDEEM_ONLY_TOML)


def member_tap(card_id: str) -> TapEvent:
    """A verified member card tap, as the reader hands it to the daemon."""
    return TapEvent(kind="member", uid="04A1B2C3D4E5F6", tag_type="NTAG213", card_id=card_id,
                    verified=True)


def ask(service: TerminalService, doc: dict[str, Any] | Message) -> dict[str, Any]:
    """One till request (a message, or the JSON object a till sends), answered as the JSON
    object the till gets."""
    msg = doc if isinstance(doc, Message) else message_from_dict(doc, "till", remote=False)
    reply = service.on_message(msg)
    assert reply is not None, doc
    return reply.to_dict()


def tap(service: TerminalService, event: TapEvent) -> dict[str, Any]:
    """What the till is sent for a tap, as its JSON object."""
    return service.on_tap(event).to_dict()


def ring_up(service: TerminalService, *, card_id: str | None, pos_id: str, txn_id: str,
            total: int, redeem: int = 0) -> dict[str, Any]:
    """Tap (if a card), basket of one line of ``total``, optional redemption, commit.

    Returns the till's last answer: ``points.awarded``, or the ``error`` that stopped it.
    """
    if card_id is not None:
        told = tap(service, member_tap(card_id))
        assert told["type"] == "member.identified", told
    quote = ask(service, {"type": "basket.update", "pos_id": pos_id, "txn_id": txn_id,
                                "lines": [{"sku": "ITEM", "qty": 1, "unit_price": total,
                                           "category": "misc"}]})
    if quote["type"] != "quote":
        return quote
    if redeem:
        quote = ask(service, {"type": "redeem.request", "pos_id": pos_id,
                                    "txn_id": txn_id, "points": redeem})
        if quote["type"] != "quote":
            return quote
    return ask(service, {"type": "txn.commit", "pos_id": pos_id, "txn_id": txn_id})


def seed_member_state(store: LocalStore, view: MemberView) -> None:
    """Give a member the engine state a test starts from (point lots, credits, stamps...),
    as earlier sales would have left it."""
    with store.engine.begin() as conn:
        done = conn.execute(update(Member).where(Member.member_id == view.member_id).values(
            tier=view.tier, birthday=view.birthday, state=encode_state(view))).rowcount
    assert done == 1, f"unknown member {view.member_id}"
