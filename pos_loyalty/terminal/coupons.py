"""A product tag's reorder coupon presented at the till: confirmed with central, once.

The till sends ``coupon.present``; the terminal asks central to use the code for this sale
(``POST /v1/phone/coupons/redeem``, with the sale's products, within ``TIMEOUT_S`` so the
till's 5 s reply timer is never reached), keeps it in its store and quotes the sale again
with the coupon passed to the rules engine as data (:class:`~pos_loyalty.rules.ConfirmedCoupon`).
Central answers each code once chain-wide: a second till hears why it was refused.

Central unreachable (no answer in time, or a 5xx): the coupon is taken within the offline
bounds of ``[phone]`` (a well-formed code not used here before, at most
``offline_coupons_per_day`` per shop day, ``offline_coupon_percent`` off one unit of the
dearest item, at most ``offline_coupon_max``), kept, and pushed once its sale is committed
(:mod:`pos_loyalty.sync.phone`); a code central finds used already is then a review item
there, never a lost or doubled discount here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime

from pos_loyalty.config import PhoneTill
from pos_loyalty.errors import SyncError
from pos_loyalty.rules import ConfirmedCoupon
from pos_loyalty.store import LocalStore
from pos_loyalty.store import phone as phone_store
from pos_loyalty.sync.client import SyncClient
from pos_loyalty.terminal.session import OpenTxn, Refused

log = logging.getLogger(__name__)
TIMEOUT_S = 2.0
"""Longest wait for central's answer (connect included), well inside the till's 5 s."""


class CouponDesk:
    """Confirms reorder coupons for one terminal (called on the daemon's worker only)."""

    def __init__(self, store: LocalStore, clock: Callable[[], datetime],
                 shop_day: Callable[[datetime], date], policy: PhoneTill | None = None,
                 *, ca_file: str | None = None) -> None:
        self.store = store
        self.clock = clock
        self.shop_day = shop_day
        self.policy = policy or PhoneTill()
        self.ca_file = ca_file
        self._client: SyncClient | None = None
        self._client_for: tuple[str, str] | None = None
        # sales that took a coupon here: most sales take none, and need no coupon read on
        # each quote and at the commit (read once here, so a restart keeps them)
        self._sales = phone_store.sales_with_coupons(store.engine)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def for_txn(self, pos_id: str, txn_id: str) -> tuple[ConfirmedCoupon, ...]:
        """The coupons taken for this sale, as the rules engine applies them."""
        if (pos_id, txn_id) not in self._sales:
            return ()
        return tuple(ConfirmedCoupon(c.code, c.percent, c.sku, c.max_value)
                     for c in phone_store.coupons_of(self.store.engine, pos_id, txn_id))

    def _central(self) -> SyncClient:
        ident = self.store.sync_identity()
        if not ident.server_url or not ident.credential:
            raise Refused("refused", "this terminal is not connected to central: reorder "
                          "coupons cannot be checked here")
        key = (ident.server_url, ident.credential)
        if self._client is None or self._client_for != key or self._client.is_closed:
            self.close()
            self._client = SyncClient(ident.server_url, ident.credential, timeout=TIMEOUT_S,
                                      ca_file=self.ca_file)
            self._client_for = key
        return self._client

    def present(self, txn: OpenTxn, code: str) -> phone_store.UsedCoupon:
        """Take ``code`` for the open sale ``txn`` or raise Refused saying why."""
        known = phone_store.coupon(self.store.engine, code)
        if known is not None and known.status == "releasing":
            self._release(known)  # central must have it back before it is used again
            known = phone_store.coupon(self.store.engine, code)
        if known is not None:
            if (known.pos_id, known.txn_id) == (txn.pos_id, txn.txn_id):
                return known  # presented again for the same sale
            if known.status == "releasing":
                raise Refused("refused", f"coupon {code} was given back by sale "
                              f"{known.txn_id} and central cannot be reached to free it: "
                              "try again later")
            raise Refused("refused", f"coupon {code} was already used at this terminal "
                          f"(sale {known.txn_id})")
        assert txn.basket is not None
        skus = sorted({line.sku for line in txn.basket.lines})
        client = self._central()
        now = self.clock()
        try:
            answer = client.redeem_coupon({
                "code": code, "skus": skus,
                "txn_ref": phone_store.coupon_ref(txn.pos_id, txn.txn_id)})
        except SyncError as exc:
            if exc.status is not None and exc.status < 500:
                reason = exc.reason.partition(": ")[2].partition(" ")[2] or exc.reason
                raise Refused("refused", f"coupon {code} refused: {reason}") from exc
            return self._offline(txn, code, now, exc.reason)
        # a coupon to keep: the sale is known to have one before it is (reads then find it);
        # a sale refused its coupon is not, and its quotes read no coupons
        self._sales.add((txn.pos_id, txn.txn_id))
        try:
            used = phone_store.UsedCoupon(code, txn.pos_id, txn.txn_id, str(answer["sku"]),
                                          int(answer["percent"]), None, False, "confirmed")
        except (KeyError, TypeError, ValueError) as exc:
            raise Refused("refused", f"coupon {code}: central's answer was not "
                          "understood; try again") from exc
        phone_store.record_coupon(self.store.engine, used, now, self.shop_day(now))
        log.info("coupon %s confirmed by central for %s/%s: %d%% off %s", code, txn.pos_id,
                 txn.txn_id, used.percent, used.sku)
        return used

    def settle(self, pos_id: str, txn_id: str, used: set[str]) -> None:
        """The sale is over (committed, or voided with ``used`` empty): give back each of
        its coupons it did not use, so that the customer keeps it."""
        if (pos_id, txn_id) not in self._sales:
            return
        for c in phone_store.coupons_of(self.store.engine, pos_id, txn_id):
            if c.code in used or c.status not in ("confirmed", "pending"):
                continue
            if c.offline:  # central never heard of it: never report it
                phone_store.forget_coupon(self.store.engine, c.code)
                continue
            phone_store.mark_coupon(self.store.engine, c.code, "releasing", "not used")
            self._release(c)

    def _release(self, c: phone_store.UsedCoupon) -> None:
        """Ask central to free a coupon our sale did not use (left ``releasing`` for the
        sync round when central cannot be reached now)."""
        try:
            self._central().release_coupon({
                "code": c.code, "txn_ref": phone_store.coupon_ref(c.pos_id, c.txn_id)})
        except (SyncError, Refused) as exc:
            log.warning("coupon %s not given back yet (sync will): %s", c.code, exc)
            return
        phone_store.forget_coupon(self.store.engine, c.code)
        log.info("coupon %s given back: sale %s/%s did not use it", c.code, c.pos_id,
                 c.txn_id)

    def _offline(self, txn: OpenTxn, code: str, now: datetime,
                 why: str) -> phone_store.UsedCoupon:
        p = self.policy
        self._sales.add((txn.pos_id, txn.txn_id))  # before it is kept, as above
        used = phone_store.UsedCoupon(code, txn.pos_id, txn.txn_id, None,
                                      p.offline_coupon_percent, p.offline_coupon_max, True,
                                      "pending")
        if not phone_store.record_coupon(self.store.engine, used, now, self.shop_day(now),
                                         per_day=p.offline_coupons_per_day):
            raise Refused("refused", f"coupon {code} cannot be checked now (central is "
                          f"unreachable) and this terminal took its {p.offline_coupons_per_day} "
                          "coupons without central today")
        log.warning("coupon %s taken offline for %s/%s (central: %s)", code, txn.pos_id,
                    txn.txn_id, why)
        return used
