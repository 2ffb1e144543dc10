"""What the terminal answers: taps become till messages, till requests become replies.

Holds the store and the program; the pure parts (session, rules, effects) do the deciding.
Every reply is a message dict as in docs/pos-protocol.md; errors become an ``error`` message
the till can show, never an exception on the link.

Nothing is charged before the commit: a redemption only changes the open transaction's
quote, and the commit writes the sale, its ledger entries and the member's engine state in
one store transaction, once per (pos_id, txn_id).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

from pos_loyalty.errors import LoyaltyError, RulesError, StoreError
from pos_loyalty.nfc.events import TapEvent
from pos_loyalty.rules import (
    DEFAULT_PROGRAM,
    Basket,
    BasketLine,
    MemberView,
    Program,
    Quote,
    ReturnLine,
    decide_redemption,
    expire_points,
    quote,
    refund,
)
from pos_loyalty.store import LocalStore, MemberRecord, RedeemFacts
from pos_loyalty.sync.policy import OfflinePolicy, decide_redeem
from pos_loyalty.terminal.effects import apply_entries, apply_refund, apply_sale
from pos_loyalty.terminal.session import OpenTxn, TillSession

log = logging.getLogger(__name__)

Message = dict[str, Any]
PROBE = Basket(lines=(BasketLine("_probe", 1, 10_000),))
"""The basket standing discounts are read from (one item of 100.00, no category)."""
STANDING_CACHE_MAX = 512


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _utc(now: datetime) -> datetime:
    """The service clock's naive UTC as an aware time: the engine turns it into shop time."""
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


def error_message(code: str, text: str, msg: Message | None = None) -> Message:
    reply: Message = {"type": "error", "code": code, "message": text}
    if msg is not None:
        for key in ("pos_id", "txn_id"):
            if isinstance(msg.get(key), str):
                reply[key] = msg[key]
    return reply


class _Refused(LoyaltyError):
    """A request the loyalty rules turn down; its text goes to the cashier."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = code


class TerminalService:
    """The terminal's application logic between the reader, the store and the till."""

    def __init__(
        self, store: LocalStore, program: Program = DEFAULT_PROGRAM, *,
        clock: Callable[[], datetime] = _utcnow,
        offline_policy: OfflinePolicy | None = None, legacy_uid_redeem: bool = False,
    ) -> None:
        self.store = store
        # members last identified by a tap that proved nothing (a legacy UID-only card):
        # they earn, and redeem only where store IT set cards.legacy_uid_redeem
        self.legacy_uid_redeem = legacy_uid_redeem
        self._unverified: set[str] = set()
        self.clock = clock
        self.offline_policy = offline_policy or OfflinePolicy()
        self.session = TillSession()
        self._standing: dict[tuple[str | None, date, tuple[int, ...]], list[str]] = {}
        self.program = program
        self._handlers: dict[str, Callable[[Message], Message]] = {
            "basket.update": self._on_basket,
            "redeem.request": self._on_redeem,
            "txn.commit": self._on_commit,
            "txn.void": self._on_void,
            "refund": self._on_refund,
            "txn.status": self._on_status,
        }

    @property
    def program(self) -> Program:
        return self._program

    @program.setter
    def program(self, program: Program) -> None:
        """A new program (a file pushed by central) invalidates the standing-discount cache."""
        self._program = program
        self._standing.clear()
        # progressive discounts on lifetime spend are the only standing discounts that
        # depend on a tap-path column beside the tier: their scale steps split the cache
        self._lifetime_steps = program.lifetime_steps()

    # -- taps ------------------------------------------------------------------------------

    def on_tap(self, tap: TapEvent) -> Message:
        """The message the till gets for this tap."""
        if tap.kind == "refused":
            return {"type": "card.refused", "uid": tap.uid,
                    "reason": tap.reason or "card not accepted"}
        if tap.kind == "product":
            return {"type": "card.refused", "uid": tap.uid,
                    "reason": "this is a product tag, not a member card"}
        try:
            member = self._lookup(tap)
        except StoreError as exc:
            log.error("member lookup failed: %s", exc)
            return {"type": "card.refused", "uid": tap.uid,
                    "reason": "the loyalty store is unavailable: please tap again"}
        if member is None:
            return {"type": "member.unknown", "card_id": tap.card_id or "",
                    "reason": "card not registered at this store"}
        if member.card_status != "active":
            return {"type": "card.refused", "uid": tap.uid,
                    "reason": f"card {member.card_id} is {member.card_status}"}
        self.session.identify(member)
        if tap.verified:
            self._unverified.discard(member.member_id)
        else:
            self._unverified.add(member.member_id)
        tap_ms = (time.perf_counter() - tap.read_done) * 1000 if tap.read_done else 0.0
        return {
            "type": "member.identified", "card_id": member.card_id,
            "member_id": member.member_id, "name": member.display_name, "tier": member.tier,
            "balance": member.balance, "discounts": self.standing_discounts(member),
            "tap_ms": round(tap_ms, 3),
        }

    def _lookup(self, tap: TapEvent) -> MemberRecord | None:
        if tap.card_id:
            return self.store.find_by_card(tap.card_id)
        return self.store.find_by_uid(tap.uid)

    def standing_discounts(self, member: MemberRecord) -> list[str]:
        """Discounts this member gets on any purchase, one line each (shown at the tap).

        They depend on the tier, the day and (for a progressive scale on lifetime spend)
        the step reached, so they are quoted once per such combination and cached; personal
        offers (coupons, credits, stamps) appear on the quote, not here.
        """
        today = self.program.local(_utc(self.clock())).date()  # the shop's day
        step = tuple(1 for s in self._lifetime_steps if member.lifetime_spend >= s)
        key = (member.tier, today, step)
        got = self._standing.get(key)
        if got is None:
            if len(self._standing) >= STANDING_CACHE_MAX:
                self._standing.clear()
            view = MemberView(member_id=member.member_id, tier=member.tier,
                              lifetime_spend=member.lifetime_spend)
            probe = quote(view, PROBE, datetime.combine(today, datetime.min.time()),
                          self.program)  # naive: already shop-local
            got = [line.text for line in probe.lines if line.kind == "discount"]
            self._standing[key] = got
        return list(got)

    # -- till requests ---------------------------------------------------------------------

    def on_message(self, msg: Message) -> Message:
        """The reply to one request from the till."""
        handler = self._handlers.get(str(msg.get("type")))
        if handler is None:
            return error_message("unsupported", f"message type {msg.get('type')!r} is not "
                                 "handled by this terminal", msg)
        try:
            return handler(msg)
        except _Refused as exc:
            return error_message(exc.code, str(exc), msg)
        except RulesError as exc:
            return error_message("bad_basket", str(exc), msg)
        except StoreError as exc:
            log.error("store error on %s: %s", msg.get("type"), exc)
            return error_message("store", "the loyalty store is unavailable; sale not "
                                 "recorded for points, please retry", msg)
        except LoyaltyError as exc:
            return error_message("refused", str(exc), msg)

    def _view(self, txn: OpenTxn) -> MemberView:
        """The member's engine state as stored now (a nobody for a sale without a card)."""
        if txn.member is None:
            return MemberView(member_id="")
        view = self.store.member_view(txn.member.member_id)
        if view is None:
            raise StoreError(f"member {txn.member.member_id} is no longer in the store")
        return view

    def _refuse_if_committed(self, pos_id: str, txn_id: str) -> None:
        if self.store.find_sale(pos_id, txn_id) is not None:
            raise _Refused("committed", f"transaction {txn_id} is already committed; "
                           "start a new transaction or use refund")

    def _quote_txn(self, txn: OpenTxn, view: MemberView, now: datetime) -> Quote:
        assert txn.basket is not None
        basket = replace(txn.basket, redeem_points=txn.redeem_points)
        return quote(view, basket, _utc(now), self.program)

    def _on_basket(self, msg: Message) -> Message:
        pos_id, txn_id = msg["pos_id"], msg["txn_id"]
        self._refuse_if_committed(pos_id, txn_id)
        basket = Basket(lines=tuple(
            BasketLine(sku=str(line["sku"]), qty=int(line["qty"]),
                       unit_price=int(line["unit_price"]), category=str(line.get("category", "")))
            for line in msg["lines"]
        ))
        txn = self.session.open_txn(pos_id, txn_id)
        txn.basket = basket
        now = self.clock()
        view = self._view(txn)  # loaded per quote: the balance may have moved since the tap
        txn.quote, txn.view, txn.quoted_at = self._quote_txn(txn, view, now), view, now
        return self._quote_message(txn)

    def _open(self, msg: Message, what: str) -> OpenTxn:
        pos_id, txn_id = msg["pos_id"], msg["txn_id"]
        self._refuse_if_committed(pos_id, txn_id)
        txn = self.session.find(pos_id, txn_id)
        if txn is None or txn.basket is None:
            raise _Refused("unknown_txn", f"no basket was sent for transaction {txn_id}; "
                           f"send basket.update before {what}")
        return txn

    def _on_redeem(self, msg: Message) -> Message:
        txn = self._open(msg, "redeeming points")
        requested = int(msg["points"])
        if txn.member is None:
            raise _Refused("refused", "no member card on this sale: tap the card before "
                           "redeeming points")
        if txn.member.member_id in self._unverified and not self.legacy_uid_redeem:
            raise _Refused("refused", "this card cannot be verified (a UID-only card): it "
                           "earns points but cannot redeem them at this store")
        now = self.clock()
        view = self._view(txn)
        assert txn.basket is not None
        plain = quote(view, replace(txn.basket, redeem_points=0), _utc(now), self.program)
        spendable = replace(view, balance=view.balance - plain.expired_points)  # never
        decision = decide_redemption(spendable, self._payable(plain), requested,  # expired
                                     self.program)
        if decision.points <= 0:
            raise _Refused("refused", f"cannot redeem {requested} pts: {decision.reason}")
        self._check_offline(self.store.redeem_facts(view.member_id), decision.points, now)
        txn.redeem_points = requested
        txn.quote, txn.view, txn.quoted_at = self._quote_txn(txn, view, now), view, now
        return self._quote_message(txn)

    def _check_offline(self, facts: RedeemFacts | None, points: int, now: datetime) -> None:
        """An enrolled terminal redeems unconfirmed points only within the offline policy."""
        if facts is None:  # not enrolled with central: no offline cap
            return
        verdict = decide_redeem(
            self.offline_policy, points=points, balance=facts.balance,
            synced_at=facts.synced_at, now=now, member_pending=facts.member_pending,
            terminal_pending=facts.terminal_pending)
        if not verdict.allowed:
            raise _Refused("refused", f"cannot redeem {points} pts here now: {verdict.reason}")

    def _payable(self, plain: Quote) -> int:
        """What is left to pay after discounts, as the engine's redemption sees it."""
        tax = self.program.tax
        if not tax.prices_include_tax and tax.discounts == "after_tax":
            return plain.total_due  # tax is part of every line's amount
        return plain.total_due - plain.tax_added

    def _quote_message(self, txn: OpenTxn) -> Message:
        assert txn.quote is not None
        return {"type": "quote", "pos_id": txn.pos_id, "txn_id": txn.txn_id,
                "member_id": txn.member.member_id if txn.member else None,
                **txn.quote.till_fields()}

    @staticmethod
    def _awarded(pos_id: str, txn_id: str, member_id: str | None, points: int,
                 balance_after: int | None, repeated: bool) -> Message:
        """points.awarded; balances are null for a sale without a member (the doc's rule)."""
        after = balance_after if member_id is not None else None
        return {
            "type": "points.awarded", "pos_id": pos_id, "txn_id": txn_id,
            "member_id": member_id, "points": points,
            "balance_before": after - points if after is not None else None,
            "balance_after": after, "repeated": repeated,
        }

    def _on_commit(self, msg: Message) -> Message:
        pos_id, txn_id = msg["pos_id"], msg["txn_id"]
        prior = self.store.find_sale(pos_id, txn_id)
        if prior is not None:
            return self._awarded(pos_id, txn_id, prior.member_id, prior.points,
                                 prior.balance_after, True)
        txn = self.session.find(pos_id, txn_id)
        if txn is None or txn.quote is None or txn.quoted_at is None:
            if self.session.find_voided(pos_id, txn_id) is not None:
                raise _Refused("unknown_txn", f"transaction {txn_id} was voided; send its "
                               "basket again to sell it")
            raise _Refused("unknown_txn", f"no basket was sent for transaction {txn_id}; "
                           "send basket.update first")
        sale = txn.quote
        now = self.clock()
        view = self._view(txn)
        if sale.expired_points and txn.member is not None:  # points past their date go
            self.expire_members([view.member_id], now)      # first: never spent
            view = self._view(txn)
        if view != txn.view:  # the member's points or state moved since the quote
            fresh = self._quote_txn(txn, view, txn.quoted_at)
            if fresh.till_fields() != sale.till_fields():
                txn.view = None
                raise _Refused("refused", "the member's points changed since the quote; "
                               "send the basket again and check the new total")
            sale = fresh
        ref = f"{pos_id}/{txn_id}"
        if txn.member is None:
            result = self.store.record_sale(pos_id=pos_id, txn_id=txn_id, member_id=None,
                                            sale=sale, now=now)
        else:
            change = apply_sale(view, sale, self.program.local(_utc(now)), self.program,
                                ref=ref)
            result = self.store.record_sale(  # the redemption is checked in the same write
                pos_id=pos_id, txn_id=txn_id, member_id=view.member_id, sale=sale, now=now,
                entries=change.entries, member_after=change.after,
                check_redeem=lambda facts: self._check_offline(facts, sale.redeem_points, now))
        self.session.close(pos_id, txn_id)
        return self._awarded(pos_id, txn_id, result.member_id, result.points,
                             result.balance_after, result.repeated)

    def _on_void(self, msg: Message) -> Message:
        pos_id, txn_id = msg["pos_id"], msg["txn_id"]
        if self.store.find_sale(pos_id, txn_id) is not None:
            return error_message("committed", f"transaction {txn_id} is committed; "
                                 "use refund to reverse it", msg)
        voided = self.session.void(pos_id, txn_id)
        return {"type": "txn.status", "pos_id": pos_id, "txn_id": txn_id,
                "state": "voided" if voided is not None else "unknown", "points": 0,
                "balance_after": voided.balance if voided is not None else None}

    def _on_refund(self, msg: Message) -> Message:
        pos_id, txn_id, refund_id = msg["pos_id"], msg["txn_id"], msg["refund_id"]
        prior = self.store.find_refund(pos_id, txn_id, refund_id)
        if prior is not None:
            return self._awarded(pos_id, txn_id, prior.member_id, prior.points,
                                 prior.balance_after, True)
        stored = self.store.sale_record(pos_id, txn_id)
        if stored is None:
            if self.session.find(pos_id, txn_id) is not None:
                raise _Refused("unknown_txn", f"transaction {txn_id} is not committed; "
                               "void it instead of refunding")
            raise _Refused("unknown_txn", f"no committed sale {txn_id} from {pos_id} here")
        if stored.quote is None:
            raise _Refused("refused", f"sale {txn_id} was recorded without its quote; its "
                           "points cannot be reversed here")
        sale = Quote.from_dict(stored.quote)
        returned = [ReturnLine(str(line["sku"]), int(line["qty"])) for line in msg["lines"]]
        asked: dict[str, int] = {}
        for rl in returned:
            asked[rl.sku] = asked.get(rl.sku, 0) + rl.qty
        view = MemberView(member_id="")
        if stored.member_id is not None:
            got = self.store.member_view(stored.member_id)
            if got is None:
                raise StoreError(f"member {stored.member_id} is no longer in the store")
            view = got
        try:
            result = refund(sale, returned, view, self.program,
                            ref=f"{pos_id}/{txn_id}/refund/{refund_id}",
                            already_returned=stored.returned)
        except RulesError as exc:
            raise _Refused("refused", str(exc)) from exc
        change = apply_refund(view, result)
        record = self.store.record_refund(
            pos_id=pos_id, txn_id=txn_id, refund_id=refund_id, member_id=stored.member_id,
            returned=asked, entries=result.entries if stored.member_id else (),
            member_after=change.after if stored.member_id else None,
            spend_reversed=result.spend_reversed, now=self.clock(),
            detail={"text": result.text, "money_refund": result.money_refund,
                    "deducted": result.deducted, "points_owed": result.points_owed,
                    "stamps": dict(result.stamps)})
        reply = self._awarded(pos_id, txn_id, record.member_id, record.points,
                              record.balance_after, record.repeated)
        if result.deducted:  # money kept back for points already spent (extra field)
            reply["deducted"] = result.deducted
        return reply

    def _on_status(self, msg: Message) -> Message:
        pos_id, txn_id = msg["pos_id"], msg["txn_id"]
        reply: Message = {"type": "txn.status", "pos_id": pos_id, "txn_id": txn_id,
                          "state": "unknown", "points": 0, "balance_after": None}
        sale = self.store.sale_record(pos_id, txn_id)
        if sale is not None:
            has = sale.member_id is not None
            reply.update(state="refunded" if sale.refunds else "committed",
                         points=sale.points + sale.refunded_points,
                         balance_after=sale.last_balance if has else None)
            return reply
        voided = self.session.find_voided(pos_id, txn_id)
        if voided is not None:
            reply.update(state="voided", balance_after=voided.balance)
            return reply
        txn = self.session.find(pos_id, txn_id)
        if txn is not None:
            q = txn.quote
            reply.update(state="open",
                         points=q.points_total - q.redeem_points if q is not None else 0,
                         balance_after=txn.view.balance if txn.view is not None and
                         txn.member is not None else None)
        return reply

    # -- housekeeping ----------------------------------------------------------------------

    def run_expiry(self, now: datetime | None = None) -> int:
        """Write ``expire`` ledger events for every member's points past their validity.

        Idempotent: the engine attributes the balance to the newest lots and the store skips
        refs already in the ledger, so a second run (or one after a crash) writes nothing.
        Returns the points expired (a positive number).
        """
        if self.program.expiry.mode == "none":
            return 0
        return self.expire_members(self.store.members_with_lots(), now or self.clock())

    def expire_members(self, member_ids: Iterable[str], now: datetime) -> int:
        """Expiry for these members only (the daemon works through the list in small
        batches between till requests); returns the points expired."""
        if self.program.expiry.mode == "none":
            return 0
        total = 0
        for member_id in member_ids:
            view = self.store.member_view(member_id)
            if view is None:
                continue
            entries = expire_points(view, _utc(now), self.program)
            if not entries:
                continue
            change = apply_entries(view, entries)
            total -= self.store.apply_entries(change.after, change.entries, now)
        if total:
            log.info("expired %d points", total)
        return total
