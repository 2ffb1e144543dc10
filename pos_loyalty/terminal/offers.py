"""Member-bound offers at the till: merged into the member at a quote, used at the commit.

Central issues offers; the terminal holds the live ones it pulled
(:mod:`pos_loyalty.store.offers`). A quote sees each as one use of its coupon code
(:func:`~pos_loyalty.store.engine_state.with_offers`), so the program's ``bound = "member"``
coupon rule with that code applies; the commit marks exactly the offers the sale used, with
the money off each gave, in the sale's own transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pos_loyalty.rules import MemberView, Program, Quote
from pos_loyalty.rules.kinds import Coupon
from pos_loyalty.store import offers as stored
from pos_loyalty.store.engine_state import settle_offers, with_offers
from pos_loyalty.store.local import LocalStore
from pos_loyalty.store.offers import HeldOffer, OfferUse


def quote_view(store: LocalStore, view: MemberView,
               now: datetime) -> tuple[MemberView, tuple[HeldOffer, ...]]:
    """The member with their live offers merged in, and those offers (``now``: naive UTC)."""
    held = stored.live_offers(store.engine, view.member_id, now)
    return (with_offers(view, held), held) if held else (view, ())


def offer_uses(after: MemberView, held: Sequence[HeldOffer], sale: Quote, program: Program,
               ref: str) -> tuple[MemberView, tuple[OfferUse, ...]]:
    """The member's state to store after ``sale`` and the offers it used, each with the
    discount its coupon rule gave on this sale."""
    state, used = settle_offers(after, held, sale.coupons_used)
    rules: dict[str, set[str]] = {}
    for rule in program.active_rules:
        if isinstance(rule, Coupon):
            rules.setdefault(rule.code, set()).add(rule.id)
    uses = []
    for offer in used:
        ids = rules.get(offer.code, set())
        given = sum(ln.value for ln in sale.lines if ln.kind == "discount" and ln.rule in ids)
        uses.append(OfferUse(offer.issue_id, ref, given))
    return state, tuple(uses)
