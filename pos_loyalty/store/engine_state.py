"""The rules engine's member state as stored in ``members.state`` (JSON), and back.

The columns a tap needs (balance, tier, spend, visits) stay columns; everything else the
engine keeps per member (stamps, tier period, membership, coupons, credits, points lots,
claims, referral, segments) lives in one JSON document read only when a basket is quoted.
Only non-default values are written, so a member with nothing held stores ``{}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date
from typing import Any

from pos_loyalty.errors import RulesError, StoreError
from pos_loyalty.rules import MemberView
from pos_loyalty.rules.model import member_from_dict
from pos_loyalty.store.offers import HeldOffer

STATE_FIELDS = ("attributes", "stamps", "period_spend", "period_visits", "period_start",
                "membership", "membership_expires", "coupons", "coupon_uses", "segments",
                "credits", "lots", "claims", "referred_by")
"""MemberView fields held in the JSON document (the rest are columns)."""


def _day(d: date | None) -> str | None:
    return d.isoformat() if d is not None else None


def state_to_dict(view: MemberView) -> dict[str, Any]:
    """The JSON-ready engine state of ``view`` (defaults left out)."""
    out: dict[str, Any] = {}
    if view.attributes:
        out["attributes"] = dict(sorted(view.attributes.items()))
    stamps = {k: v for k, v in sorted(view.stamps.items()) if v}
    if stamps:
        out["stamps"] = stamps
    if view.period_spend:
        out["period_spend"] = view.period_spend
    if view.period_visits:
        out["period_visits"] = view.period_visits
    if view.period_start is not None:
        out["period_start"] = _day(view.period_start)
    if view.membership is not None:
        out["membership"] = view.membership
        out["membership_expires"] = _day(view.membership_expires)
    coupons = {k: v for k, v in sorted(view.coupons.items()) if v > 0}
    if coupons:
        out["coupons"] = coupons
    if view.coupon_uses:
        out["coupon_uses"] = dict(sorted(view.coupon_uses.items()))
    if view.segments:
        out["segments"] = sorted(view.segments)
    if view.credits:
        out["credits"] = [
            {"credit_id": c.credit_id, "amount": c.amount, "percent_bp": c.percent_bp,
             "reason": c.reason, "expires": _day(c.expires)} for c in view.credits]
    if view.lots:
        out["lots"] = [{"earned_on": lot.earned_on.isoformat(), "points": lot.points}
                       for lot in view.lots]
    if view.claims:
        out["claims"] = {k: v.isoformat() for k, v in sorted(view.claims.items())}
    if view.referred_by:
        out["referred_by"] = view.referred_by
    return out


def encode_state(view: MemberView) -> str:
    """``members.state`` for ``view``: compact, key-sorted JSON."""
    return json.dumps(state_to_dict(view), sort_keys=True, separators=(",", ":"))


def decode_state(raw: str | None, columns: Mapping[str, Any]) -> MemberView:
    """A MemberView from the member's columns and its ``members.state`` document.

    A damaged document is a StoreError naming the member, never a silently empty state
    (that would hand out a stamp card's reward again).
    """
    member_id = str(columns.get("member_id", ""))
    try:
        doc = json.loads(raw or "{}")
    except ValueError as exc:
        raise StoreError(f"member {member_id}: stored engine state is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise StoreError(f"member {member_id}: stored engine state is not a JSON object")
    unknown = sorted(set(doc) - set(STATE_FIELDS))
    if unknown:
        raise StoreError(f"member {member_id}: unknown engine state field(s) "
                         f"{', '.join(unknown)}")
    data = {**doc, **{k: v for k, v in columns.items() if v is not None}}
    if isinstance(data.get("birthday"), date):
        data["birthday"] = data["birthday"].isoformat()
    try:
        return member_from_dict(data)
    except RulesError as exc:
        raise StoreError(f"member {member_id}: stored engine state is invalid: {exc}") from exc


def with_offers(view: MemberView, offers: Iterable[HeldOffer]) -> MemberView:
    """The member as the engine sees them at a quote: their own coupons plus one use of each
    live offer's code, so a ``bound = "member"`` coupon rule with that code applies."""
    coupons = dict(view.coupons)
    for offer in offers:
        coupons[offer.code] = coupons.get(offer.code, 0) + 1
    return replace(view, coupons=coupons)


def settle_offers(after: MemberView, offers: Sequence[HeldOffer], used: Iterable[str],
                  ) -> tuple[MemberView, tuple[HeldOffer, ...]]:
    """Split a sale's outcome back into the stored state and the offers it used.

    ``after`` came from a view made by :func:`with_offers` with ``offers``; ``used`` are the
    sale's coupon codes. Offers are used before the member's own coupons of the same code
    (they expire; ``offers`` are soonest-to-expire first), and the offers not used are taken
    out again, so ``members.state`` never holds a coupon that lives in ``member_offers``.
    """
    left = list(offers)
    taken: list[HeldOffer] = []
    for code in used:
        for offer in left:
            if offer.code == code:
                taken.append(offer)
                left.remove(offer)
                break
    coupons = dict(after.coupons)
    for offer in left:
        coupons[offer.code] = coupons.get(offer.code, 0) - 1
    return (replace(after, coupons={k: v for k, v in coupons.items() if v > 0}),
            tuple(taken))
