"""A product tag tapped at the till: the item is linked to the member of the open sale.

The link is written to the terminal's store before the till is told (offline first) and
pushed to central by the sync worker (``POST /v1/phone/links``), where the first link of a
tag wins: the buyer's first genuine phone tap on the tag then earns them the points for
engaging, and their warranty form knows them. A product tag never answers as an error: with
no member on a sale the till hears ``product.tapped`` with ``linked`` false and why.
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from collections.abc import Callable
from datetime import datetime

from pos_loyalty.errors import StoreError
from pos_loyalty.nfc.events import TapEvent
from pos_loyalty.pos.messages import ProductTapped
from pos_loyalty.store import LocalStore
from pos_loyalty.store import phone as phone_store
from pos_loyalty.store.sales import fit_ref
from pos_loyalty.terminal.session import OpenTxn, TillSession

log = logging.getLogger(__name__)
SKU_RE = re.compile(r"[A-Za-z0-9._-]{1,32}")
"""A product code as central's catalog and link endpoint take it."""


def product_sku(tap: TapEvent) -> str | None:
    """The product code a verified tag proved: the SUN file data's ``sku``, the signed
    token's product, else the URL's last path part (the MAC still proves the tag ours)."""
    info = tap.product or {}
    sku = info.get("sku") or info.get("product")
    if not sku and info.get("url"):
        sku = urllib.parse.urlsplit(info["url"]).path.rstrip("/").rpartition("/")[2]
    return sku if sku and SKU_RE.fullmatch(sku) else None


def sale_for_tag(session: TillSession) -> OpenTxn | None:
    """The open sale a product tap belongs to (a tap names no sale): the newest sale of the
    member at the till, None if they have none yet (never someone else's); with nobody at
    the till (after a restart), the newest sale that has a member."""
    with_member = [t for t in session.txns.values() if t.member is not None]
    at_till = session.member
    if at_till is not None:
        with_member = [t for t in with_member if t.member is not None
                       and t.member.member_id == at_till.member_id]
    return with_member[-1] if with_member else None


class TagDesk:
    """Links product tags to buyers for one terminal (called on the daemon's worker)."""

    def __init__(self, store: LocalStore, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.clock = clock

    def on_product(self, tap: TapEvent, session: TillSession) -> ProductTapped:
        sku = product_sku(tap)
        if sku is None:
            return ProductTapped(tap.uid, "?", False, None, None, None,
                                 "product tag without a product code: not linked")
        txn = sale_for_tag(session)
        if txn is None or txn.member is None:
            return ProductTapped(tap.uid, sku, False, None, None, None,
                                 f"product {sku}: no member on the sale, not linked (tap "
                                 "the member card and ring up the sale first)")
        member = txn.member
        try:
            fresh = phone_store.record_link(
                self.store.engine, uid=tap.uid, sku=sku, member_id=member.member_id,
                txn_ref=fit_ref(f"{txn.pos_id}/{txn.txn_id}"), now=self.clock())
        except StoreError as exc:
            log.error("product tag %s not linked: %s", tap.uid, exc)
            return ProductTapped(tap.uid, sku, False, None, txn.pos_id, txn.txn_id,
                                 f"product {sku}: the loyalty store is unavailable, not "
                                 "linked: please tap it again")
        log.info("product tag %s (%s) linked to %s on %s/%s%s", tap.uid, sku,
                 member.member_id, txn.pos_id, txn.txn_id, "" if fresh else " (again)")
        return ProductTapped(tap.uid, sku, True, member.member_id, txn.pos_id, txn.txn_id,
                             f"product {sku} registered to {member.name}")
