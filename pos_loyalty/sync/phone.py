"""The sync round's push of what the till did with product tags: links, offline coupons and
coupons given back by sales that did not use them.

Like ledger events, each is kept in the terminal's store until central answers it, and a
definite answer ends it: ``conflict`` (another buyer linked the tag first, a coupon used
elsewhere before this offline sale) is logged and kept for review, never sent again; an
unreachable or refusing central fails the round, which the worker retries with backoff.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from sqlalchemy import Engine

from pos_loyalty.errors import SyncError
from pos_loyalty.store import phone as phone_store

log = logging.getLogger("pos_loyalty.sync")
LINK_ANSWERS = frozenset({"linked", "known", "conflict", "unknown_member"})


class PhoneCalls(Protocol):
    """The two central calls this push needs (:class:`~pos_loyalty.sync.client.SyncClient`)."""

    def push_links(self, links: list[dict[str, str]]) -> dict[str, Any]: ...

    def redeem_coupon(self, body: dict[str, Any]) -> dict[str, Any]: ...

    def release_coupon(self, body: dict[str, Any]) -> dict[str, Any]: ...


def push_phone(engine: Engine, client: PhoneCalls) -> list[str]:
    """Push pending tag links and committed offline coupons; the conflicts, one line each.

    Raises SyncError when central is unreachable or refuses (the rest stays pending).
    """
    problems = push_links(engine, client) + push_offline_coupons(engine, client)
    release_unused_coupons(engine, client)
    return problems


def push_links(engine: Engine, client: PhoneCalls) -> list[str]:
    problems: list[str] = []
    while True:
        links = phone_store.pending_links(engine)
        if not links:
            return problems
        answer = client.push_links([{"uid": x.uid, "sku": x.sku, "member_id": x.member_id,
                                     "txn_ref": x.txn_ref} for x in links])
        results = answer.get("results")
        if not isinstance(results, list) or len(results) != len(links) \
                or not all(r in LINK_ANSWERS for r in results):
            raise SyncError("central's answer to the tag links does not match them")
        phone_store.mark_links(engine, [(x.id, str(r)) for x, r in zip(links, results,
                                                                         strict=True)])
        for x, r in zip(links, results, strict=True):
            if r in ("conflict", "unknown_member"):
                text = (f"tag {x.uid} ({x.sku}): {r}: linked at {x.txn_ref} to {x.member_id}, "
                        "central keeps its first link")
                log.warning("product %s", text)
                problems.append(text)
        if len(links) < phone_store.MAX_PUSH:
            return problems


def push_offline_coupons(engine: Engine, client: PhoneCalls) -> list[str]:
    problems: list[str] = []
    while True:
        coupons = phone_store.committed_offline_coupons(engine)
        if not coupons:
            return problems
        for c in coupons:
            answer = client.redeem_coupon({
                "code": c.code, "txn_ref": phone_store.coupon_ref(c.pos_id, c.txn_id),
                "offline": True})
            status = answer.get("status")
            if status == "redeemed":
                phone_store.mark_coupon(engine, c.code, "redeemed",
                                        f"{answer.get('percent')}% off {answer.get('sku')}")
                continue
            if status != "conflict":
                raise SyncError(f"central answered coupon {c.code} with {status!r}")
            reason = str(answer.get("reason", ""))
            phone_store.mark_coupon(engine, c.code, "conflict", reason)
            text = (f"coupon {c.code} accepted offline in {c.pos_id}/{c.txn_id}: {reason} "
                    "(held for review at central)")
            log.warning("%s", text)
            problems.append(text)
        if len(coupons) < phone_store.MAX_PUSH:
            return problems


def release_unused_coupons(engine: Engine, client: PhoneCalls) -> None:
    """Give back to central the coupons our sales took and did not use (voided ones)."""
    while True:
        coupons = phone_store.coupons_to_release(engine)
        if not coupons:
            return
        for c in coupons:
            answer = client.release_coupon({
                "code": c.code, "txn_ref": phone_store.coupon_ref(c.pos_id, c.txn_id)})
            if answer.get("status") not in ("released", "not_held"):
                raise SyncError(f"central answered the release of {c.code} with "
                                f"{answer.get('status')!r}")
            phone_store.forget_coupon(engine, c.code)
        if len(coupons) < phone_store.MAX_PUSH:
            return
