"""What the terminal answers: taps become till messages, till requests become replies.

Holds the store and the program; the pure parts (session, rules, effects) do the deciding.
Every reply is a typed message (:mod:`pos_loyalty.pos.messages`); errors the terminal
expects become an ``error`` message the till can show, never an exception on the link.

Nothing is charged before the commit: a redemption only changes the open transaction's
quote, and the commit writes the sale, its ledger entries and the member's engine state in
one store transaction, once per (pos_id, txn_id). Each quoted open sale is also kept in the
store (:class:`~pos_loyalty.store.OpenSales`) until it is committed or voided, so a restart
loses neither its basket, nor its member, nor its redemption.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, date, datetime

from pos_loyalty.config import PhoneTill
from pos_loyalty.errors import LoyaltyError, RulesError, StoreError
from pos_loyalty.ids import uuid7
from pos_loyalty.nfc.events import TapEvent
from pos_loyalty.pos.messages import (
    MAX_TEXT_LEN,
    UNSET,
    BasketUpdate,
    CardRefused,
    CouponPresent,
    Error,
    MemberIdentified,
    MemberUnknown,
    Message,
    PointsAwarded,
    ProductTapped,
    QuoteItem,
    QuoteReply,
    RedeemRequest,
    RefundRequest,
    TerminalNotice,
    TerminalReply,
    TxnCommit,
    TxnStatus,
    TxnStatusRequest,
    TxnVoid,
)
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
from pos_loyalty.store import (
    LocalStore,
    MemberRecord,
    OpenSales,
    RedeemFacts,
    SavedSale,
    sale_outbox,
)
from pos_loyalty.store.offers import HeldOffer
from pos_loyalty.store.sales import fit_ref
from pos_loyalty.sync.online import OnlineRedeem
from pos_loyalty.sync.policy import OfflinePolicy, decide_redeem
from pos_loyalty.terminal.coupons import CouponDesk
from pos_loyalty.terminal.effects import apply_entries, apply_refund, apply_sale
from pos_loyalty.terminal.hints import cashier_line
from pos_loyalty.terminal.offers import offer_uses, quote_view
from pos_loyalty.terminal.session import (
    AT_TILL,
    Binding,
    OpenTxn,
    Refused,
    Tapped,
    TillSession,
)
from pos_loyalty.terminal.tags import TagDesk
from pos_loyalty.terminal.visit import visit_link

log = logging.getLogger(__name__)

PROBE = Basket(lines=(BasketLine("_probe", 1, 10_000),))
"""The basket standing discounts are read from (one item of 100.00, no category)."""
STANDING_CACHE_MAX = 512


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _utc(now: datetime) -> datetime:
    """The service clock's naive UTC as an aware time: the engine turns it into shop time."""
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


def _fit(text: str) -> str:
    """A text cut to what a message field holds (a long basket's summary can outgrow it)."""
    return text if len(text) <= MAX_TEXT_LEN else text[:MAX_TEXT_LEN - 3] + "..."


def error_message(code: str, text: str, msg: Message | None = None) -> Error:
    """An ``error`` answer to ``msg``, naming its sale when it has one."""
    pos_id, txn_id = getattr(msg, "pos_id", None), getattr(msg, "txn_id", None)
    return Error(code, _fit(text), pos_id if isinstance(pos_id, str) else None,
                 txn_id if isinstance(txn_id, str) else None)


class TerminalService:
    """The terminal's application logic between the reader, the store and the till."""

    def __init__(
        self, store: LocalStore, program: Program = DEFAULT_PROGRAM, *,
        clock: Callable[[], datetime] = _utcnow,
        offline_policy: OfflinePolicy | None = None, legacy_uid_redeem: bool = False,
        phone: PhoneTill | None = None, ca_file: str | None = None,
        online: OnlineRedeem | None = None,
    ) -> None:
        self.store = store
        # redemptions central confirmed online: (pos_id, txn_id) -> (hold id, points held)
        self.online = online
        self._holds: dict[tuple[str, str], tuple[str, int]] = {}
        # members last identified by a tap that proved nothing (a legacy UID-only card):
        # they earn, and redeem only where store IT set cards.legacy_uid_redeem
        self.legacy_uid_redeem = legacy_uid_redeem
        self._unverified: set[str] = set()
        self.clock = clock
        self.offline_policy = offline_policy or OfflinePolicy()
        self.session = TillSession()
        self.program_version: int | None = None  # central's version of the program, if any
        self._standing: dict[tuple[str | None, date, tuple[int, ...]], list[str]] = {}
        self.program = program
        self._held_offers: dict[str, tuple[HeldOffer, ...]] = {}  # as the last quote saw
        self.open_sales = OpenSales(store.engine)
        self.phone = phone or PhoneTill()
        self.tags = TagDesk(store, lambda: self.clock())
        self.coupons = CouponDesk(store, lambda: self.clock(), self.shop_day, self.phone,
                                  ca_file=ca_file)
        self._restore_open_sales()

    def _restore_open_sales(self) -> None:
        """Open sales kept before a restart, re-quoted as they were; one whose quote would
        now differ (the member's points moved) is kept without it, and its commit asks for
        the basket again."""
        for saved in self.open_sales.load(self.session.max_open):
            if self.store.find_sale(saved.pos_id, saved.txn_id) is not None:
                self.open_sales.drop(saved.pos_id, saved.txn_id)  # committed just before
                continue
            member = None if saved.member_id is None else Tapped(
                saved.member_id, saved.member_name, saved.member_balance, 0)
            txn = OpenTxn(saved.pos_id, saved.txn_id, member=member,
                          basket=Basket(lines=tuple(BasketLine(*x) for x in saved.lines)),
                          redeem_points=saved.redeem_points)
            try:
                view = self._view(txn)
                fresh = self._quote_txn(txn, view, saved.quoted_at)
            except (StoreError, RulesError) as exc:
                log.warning("open sale %s/%s not restored: %s", saved.pos_id, saved.txn_id,
                            exc)
                continue
            txn.quote, txn.view, txn.quoted_at = fresh, view, saved.quoted_at
            if self._quote_message(txn).to_dict() != json.loads(saved.shown):
                txn.quote = txn.view = txn.quoted_at = None
            if saved.hold is not None:
                self._holds[(saved.pos_id, saved.txn_id)] = saved.hold
            self.session.restore(txn)
        if self.session.txns:
            log.info("restored %d open sale(s) after a restart", len(self.session.txns))

    def _keep(self, txn: OpenTxn, shown: QuoteReply) -> None:
        """Keep the open sale as just quoted, for a restart."""
        assert txn.basket is not None and txn.quoted_at is not None
        self.open_sales.save(SavedSale(
            txn.pos_id, txn.txn_id, txn.member.member_id if txn.member else None,
            txn.member.name if txn.member else "", txn.member.balance if txn.member else 0,
            tuple((ln.sku, ln.qty, ln.unit_price, ln.category) for ln in txn.basket.lines),
            txn.redeem_points, json.dumps(shown.to_dict()), txn.quoted_at,
            self._holds.get((txn.pos_id, txn.txn_id))))

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

    @staticmethod
    def log_tap(tap: TapEvent, reply: TerminalNotice) -> None:
        """One INFO line for a tap and what the till was told (the daemon calls it once the
        reply is on the wire, so that the line costs the tap nothing)."""
        if isinstance(reply, MemberIdentified):
            log.info("tap: card %s -> member %s (%s), balance %d", reply.card_id, reply.name,
                     reply.member_id, reply.balance)
        elif isinstance(reply, CardRefused):
            log.info("tap: card %s refused: %s", tap.card_id or tap.uid, reply.reason)
        elif isinstance(reply, ProductTapped):
            log.info("tap: product tag %s: %s", reply.uid, reply.text)
        else:
            log.info("tap: card %s unknown: %s", reply.card_id, reply.reason)

    def on_tap(self, tap: TapEvent) -> TerminalNotice:
        """The message the till gets for this tap."""
        if tap.kind == "refused":
            return CardRefused(tap.uid, tap.reason or "card not accepted")
        if tap.kind == "product":
            return self.tags.on_product(tap, self.session)
        try:
            member = self._lookup(tap)
        except StoreError as exc:
            log.error("member lookup failed: %s", exc)
            return CardRefused(tap.uid, "the loyalty store is unavailable: please tap again")
        if member is None:
            return MemberUnknown(tap.card_id or "", "card not registered at this store")
        if member.card_status != "active":
            return CardRefused(tap.uid, f"card {member.card_id} is {member.card_status}")
        self.session.identify(member.member_id, member.display_name, member.balance)
        if tap.verified:
            self._unverified.discard(member.member_id)
        else:
            self._unverified.add(member.member_id)
        today = self.shop_day(self.clock())  # once per tap: the hint and discounts share it
        hint = cashier_line(member.line, today)
        tap_ms = (time.perf_counter() - tap.read_done) * 1000 if tap.read_done else 0.0
        return MemberIdentified(member.card_id, member.member_id, member.display_name,
                                member.tier, member.balance,
                                tuple(self.standing_discounts(member, today)),
                                round(tap_ms, 3), hint)

    def shop_day(self, now: datetime) -> date:
        """The shop's local day at ``now`` (the service clock's naive UTC)."""
        return self.program.local(_utc(now)).date()

    def _lookup(self, tap: TapEvent) -> MemberRecord | None:
        if tap.card_id:
            return self.store.find_by_card(tap.card_id)
        return self.store.find_by_uid(tap.uid)

    def standing_discounts(self, member: MemberRecord, today: date) -> list[str]:
        """Discounts this member gets on any purchase on the shop's day ``today``, one
        line each (shown at the tap).

        They depend on the tier, the day and (for a progressive scale on lifetime spend)
        the step reached, so they are quoted once per such combination and cached; personal
        offers (coupons, credits, stamps) appear on the quote, not here.
        """
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

    def on_message(self, msg: Message) -> TerminalReply | None:
        """The reply to one message from the till (None for the till's own ``error``,
        which is logged and needs no answer)."""
        try:
            match msg:
                case BasketUpdate():
                    return self._on_basket(msg)
                case RedeemRequest():
                    return self._on_redeem(msg)
                case CouponPresent():
                    return self._on_coupon(msg)
                case TxnCommit():
                    return self._on_commit(msg)
                case TxnVoid():
                    return self._on_void(msg)
                case RefundRequest():
                    return self._on_refund(msg)
                case TxnStatusRequest():
                    return self._on_status(msg)
                case Error():
                    log.warning("the till reports an error %s: %s", msg.code, msg.message)
                    return None
            return error_message("unsupported", f"message type {msg.TYPE!r} is not "
                                 "handled by this terminal", msg)
        except Refused as exc:
            return error_message(exc.code, str(exc), msg)
        except RulesError as exc:
            return error_message("bad_basket", str(exc), msg)
        except StoreError as exc:
            log.error("store error on %s: %s", msg.TYPE, exc)
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
        if len(self._held_offers) >= STANDING_CACHE_MAX:  # a commit re-reads its own
            self._held_offers.clear()
        view, self._held_offers[view.member_id] = quote_view(self.store, view, self.clock())
        return view

    def _refuse_if_committed(self, pos_id: str, txn_id: str) -> None:
        if self.store.find_sale(pos_id, txn_id) is not None:
            raise Refused("committed", f"transaction {txn_id} is already committed; "
                           "start a new transaction or use refund")

    def _quote_txn(self, txn: OpenTxn, view: MemberView, now: datetime) -> Quote:
        assert txn.basket is not None
        basket = replace(txn.basket, redeem_points=txn.redeem_points,
                         coupons=self.coupons.for_txn(txn.pos_id, txn.txn_id))
        got = quote(view, basket, _utc(now), self.program)
        if txn.member is None:  # nobody earns: quote no points rather than award none
            got = replace(got, lines=tuple(ln for ln in got.lines if ln.kind != "points"),
                          perks=(), points_liability=0)
        return got

    def _on_basket(self, msg: BasketUpdate) -> QuoteReply:
        pos_id, txn_id = msg.pos_id, msg.txn_id
        self._refuse_if_committed(pos_id, txn_id)
        basket = Basket(lines=tuple(
            BasketLine(sku=line.sku, qty=line.qty, unit_price=line.unit_price,
                       category=line.category)
            for line in msg.lines
        ))
        binding: Binding = AT_TILL if msg.member_id is UNSET else msg.member_id
        new = self.session.find(pos_id, txn_id) is None
        txn = self.session.open_txn(pos_id, txn_id)
        try:
            self.session.bind(txn, binding)
        except Refused:
            if new:  # a refused first basket opens nothing
                self.session.close(pos_id, txn_id)
            raise
        txn.basket = basket
        if txn.redeem_points == 0:  # none asked, or dropped with the member it was for
            self._release(txn.pos_id, txn.txn_id)
        now = self.clock()
        view = self._view(txn)  # loaded per quote: the balance may have moved since the tap
        txn.quote, txn.view, txn.quoted_at = self._quote_txn(txn, view, now), view, now
        log.info("quote %s/%s for %s: %s", pos_id, txn_id, txn.member or "no member",
                 txn.quote.summary)
        reply = self._quote_message(txn)
        self._keep(txn, reply)
        return reply

    def _open(self, msg: RedeemRequest | CouponPresent, what: str) -> OpenTxn:
        pos_id, txn_id = msg.pos_id, msg.txn_id
        self._refuse_if_committed(pos_id, txn_id)
        txn = self.session.find(pos_id, txn_id)
        if txn is None or txn.basket is None:
            raise Refused("unknown_txn", f"no basket was sent for transaction {txn_id}; "
                           f"send basket.update before {what}")
        return txn

    def _on_redeem(self, msg: RedeemRequest) -> QuoteReply:
        txn = self._open(msg, "redeeming points")
        requested = msg.points
        self.session.check_member(txn)
        now = self.clock()
        if requested == 0:  # the till cancels the redemption
            view = self._view(txn)
            txn.redeem_points = 0
            self._release(txn.pos_id, txn.txn_id)
            txn.quote, txn.view, txn.quoted_at = self._quote_txn(txn, view, now), view, now
            log.info("redemption cancelled on %s/%s", txn.pos_id, txn.txn_id)
            reply = self._quote_message(txn)
            self._keep(txn, reply)
            return reply
        if txn.member is None:
            raise Refused("refused", "no member card on this sale: tap the card before "
                           "redeeming points")
        if txn.member.member_id in self._unverified and not self.legacy_uid_redeem:
            raise Refused("refused", "this card cannot be verified (a UID-only card): it "
                          "earns points but cannot redeem them at this store")
        view = self._view(txn)
        assert txn.basket is not None
        plain = quote(view, replace(txn.basket, redeem_points=0), _utc(now), self.program)
        spendable = replace(view, balance=view.balance - plain.expired_points)  # never
        decision = decide_redemption(spendable, self._payable(plain), requested,  # expired
                                     self.program)
        if decision.points <= 0:
            raise Refused("refused", f"cannot redeem {requested} pts: {decision.reason}")
        hold = self._confirm_online(txn, view.member_id, decision.points)
        key = (txn.pos_id, txn.txn_id)
        if hold is None:
            self._check_offline(self.store.redeem_facts(view.member_id), decision.points, now)
            self._release(*key)  # the new redemption replaces the earlier one
        else:  # central released the earlier hold itself
            self._holds[key] = hold
        txn.redeem_points = requested
        txn.quote, txn.view, txn.quoted_at = self._quote_txn(txn, view, now), view, now
        reply = self._quote_message(txn)
        self._keep(txn, reply)
        return reply

    def _on_coupon(self, msg: CouponPresent) -> QuoteReply:
        """A product tag's coupon for the sale: taken once (terminal/coupons.py), then the
        sale is quoted again with it."""
        txn = self._open(msg, "presenting a coupon")
        self.coupons.present(txn, msg.code)
        now = self.clock()
        view = self._view(txn)
        txn.quote, txn.view, txn.quoted_at = self._quote_txn(txn, view, now), view, now
        reply = self._quote_message(txn)
        self._keep(txn, reply)
        return reply

    def _confirm_online(self, txn: OpenTxn, member_id: str,
                        points: int) -> tuple[str, int] | None:
        """Central decides the redemption when it answers in time: the hold (id, points)
        when it confirmed, None when it did not answer (the offline policy decides);
        Refused with central's reason when it refused (the sale keeps what it had)."""
        if self.online is None:
            return None
        hold_id = str(uuid7())
        earlier = self._holds.get((txn.pos_id, txn.txn_id))
        got = self.online.confirm(hold_id=hold_id, member_id=member_id, points=points,
                                  txn_ref=fit_ref(f"{txn.pos_id}/{txn.txn_id}/redeem"),
                                  replaces=earlier[0] if earlier else None)
        if got is None:
            return None
        if not got.confirmed:
            log.info("redemption of %d pts on %s/%s refused by central: %s", points,
                     txn.pos_id, txn.txn_id, got.reason)
            raise Refused("refused", f"cannot redeem {points} pts: {got.reason} "
                          "(confirmed with central)")
        log.info("redemption of %d pts on %s/%s confirmed by central (hold %s)", points,
                 txn.pos_id, txn.txn_id, hold_id)
        return hold_id, points

    def _release(self, pos_id: str, txn_id: str) -> None:
        """Give back the points central holds for this sale's redemption, if any."""
        hold = self._holds.pop((pos_id, txn_id), None)
        if hold is not None and self.online is not None:
            self.online.release(hold[0])

    def _check_offline(self, facts: RedeemFacts | None, points: int, now: datetime) -> None:
        """An enrolled terminal redeems unconfirmed points only within the offline policy."""
        if facts is None:  # not enrolled with central: no offline cap
            return
        verdict = decide_redeem(
            self.offline_policy, points=points, balance=facts.balance,
            synced_at=facts.synced_at, now=now, member_pending=facts.member_pending,
            terminal_pending=facts.terminal_pending)
        if not verdict.allowed:
            raise Refused("refused", f"cannot redeem {points} pts here now: {verdict.reason}")

    def _payable(self, plain: Quote) -> int:
        """What is left to pay after discounts, as the engine's redemption sees it."""
        tax = self.program.tax
        if not tax.prices_include_tax and tax.discounts == "after_tax":
            return plain.total_due  # tax is part of every line's amount
        return plain.total_due - plain.tax_added

    def _quote_message(self, txn: OpenTxn) -> QuoteReply:
        q = txn.quote
        assert q is not None
        return QuoteReply(
            txn.pos_id, txn.txn_id, txn.member.member_id if txn.member else None,
            tuple(QuoteItem(ln.program, ln.kind, ln.value, ln.text) for ln in q.lines),
            q.discount_total, q.points_total, q.total_due, _fit(q.summary), q.display,
            {"name": self.program.name, "version": self.program_version})

    @staticmethod
    def _awarded(pos_id: str, txn_id: str, member_id: str | None, points: int,
                 balance_after: int | None, repeated: bool,
                 deducted: int | None = None) -> PointsAwarded:
        """points.awarded; balances are null for a sale without a member (the doc's rule)."""
        after = balance_after if member_id is not None else None
        return PointsAwarded(pos_id, txn_id, member_id, points,
                             after - points if after is not None else None, after, repeated,
                             deducted)

    def _on_commit(self, msg: TxnCommit) -> PointsAwarded:
        pos_id, txn_id = msg.pos_id, msg.txn_id
        prior = self.store.find_sale(pos_id, txn_id)
        if prior is not None:
            return self._with_visit(self._awarded(pos_id, txn_id, prior.member_id,
                                                  prior.points, prior.balance_after, True))
        txn = self.session.find(pos_id, txn_id)
        if txn is not None and txn.basket is not None and txn.quote is None:
            raise Refused("refused", f"the terminal restarted and the points of sale {txn_id} "
                          "changed since its quote; send the basket again and check the total")
        if txn is None or txn.quote is None or txn.quoted_at is None:
            if self.session.find_voided(pos_id, txn_id) is not None:
                raise Refused("unknown_txn", f"transaction {txn_id} was voided; send its "
                               "basket again to sell it")
            raise Refused("unknown_txn", f"no basket was sent for transaction {txn_id}; "
                           "send basket.update first")
        self.session.check_member(txn)
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
                raise Refused("refused", "the member's points changed since the quote; "
                               "send the basket again and check the new total")
            sale = fresh
        ref = f"{pos_id}/{txn_id}"
        if txn.member is None:
            result = self.store.record_sale(pos_id=pos_id, txn_id=txn_id, member_id=None,
                                            sale=sale, now=now, basket=txn.basket)
        else:
            change = apply_sale(view, sale, self.program.local(_utc(now)), self.program,
                                ref=ref)
            after, uses = offer_uses(change.after, self._held_offers.pop(view.member_id, ()),
                                     sale, self.program, ref)
            hold = self._holds.get((pos_id, txn_id))
            if hold is not None and not 0 < sale.redeem_points <= hold[1]:
                self._release(pos_id, txn_id)  # not what central confirmed: offline rules
                hold = None
            result = self.store.record_sale(  # the redemption is checked in the same write
                pos_id=pos_id, txn_id=txn_id, member_id=view.member_id, sale=sale, now=now,
                entries=change.entries, member_after=after, basket=txn.basket,
                check_redeem=lambda facts: self._check_offline(facts, sale.redeem_points, now),
                online_hold=hold[0] if hold is not None else None, offer_uses=uses)
            self._holds.pop((pos_id, txn_id), None)  # used by the sale's redeem event
        self.session.close(pos_id, txn_id)
        try:
            self.open_sales.drop(pos_id, txn_id)
        except StoreError as exc:  # the sale is written: a restart drops its row anyway
            log.warning("open sale %s/%s kept after its commit: %s", pos_id, txn_id, exc)
        self._settle_coupons(pos_id, txn_id, sale)
        log.info("commit %s/%s: %+d pts to %s, balance %s", pos_id, txn_id, result.points,
                 txn.member or "no member", result.balance_after if txn.member else "-")
        return self._with_visit(self._awarded(pos_id, txn_id, result.member_id,
                                              result.points, result.balance_after,
                                              result.repeated))

    def _settle_coupons(self, pos_id: str, txn_id: str, sale: Quote | None) -> None:
        """A sale over (``sale`` None: voided) gives back the coupons it did not use; the
        sale stands whatever happens here (a failure is retried by the sync round)."""
        used = {ln.rule.removeprefix("coupon:") for ln in sale.lines
                if ln.rule.startswith("coupon:")} if sale is not None else set()
        try:
            self.coupons.settle(pos_id, txn_id, used)
        except StoreError as exc:
            log.error("coupons of %s/%s not settled: %s", pos_id, txn_id, exc)

    def _with_visit(self, awarded: PointsAwarded) -> PointsAwarded:
        """A member's sale: points.awarded with the receipt's visit link (terminal/visit.py)."""
        url = visit_link(self.store, self.phone.visit_url, awarded.pos_id, awarded.txn_id,
                         awarded.member_id)
        return awarded if url is None else replace(awarded, visit_url=url)

    def _on_void(self, msg: TxnVoid) -> TxnStatus | Error:
        pos_id, txn_id = msg.pos_id, msg.txn_id
        if self.store.find_sale(pos_id, txn_id) is not None:
            return error_message("committed", f"transaction {txn_id} is committed; "
                                 "use refund to reverse it", msg)
        open_txn = self.session.find(pos_id, txn_id)
        voided = self.session.void(pos_id, txn_id)
        self._release(pos_id, txn_id)
        self.open_sales.drop(pos_id, txn_id)
        if open_txn is not None and open_txn.basket is not None:  # central's reports see it
            now = self.clock()
            sale_outbox.record_void(self.store.engine, sale_outbox.void_body(
                pos_id=pos_id, txn_id=txn_id, member_id=voided.member_id if voided else None,
                basket=open_txn.basket, now=now), now)
        self._settle_coupons(pos_id, txn_id, None)
        log.info("void %s/%s: %s", pos_id, txn_id, "voided" if voided else "unknown sale")
        return TxnStatus(pos_id, txn_id, "voided" if voided is not None else "unknown", 0,
                         voided.balance if voided is not None else None)

    def _on_refund(self, msg: RefundRequest) -> PointsAwarded:
        pos_id, txn_id, refund_id = msg.pos_id, msg.txn_id, msg.refund_id
        prior = self.store.find_refund(pos_id, txn_id, refund_id)
        if prior is not None:
            return self._awarded(pos_id, txn_id, prior.member_id, prior.points,
                                 prior.balance_after, True)
        stored = self.store.sale_record(pos_id, txn_id)
        if stored is None:
            if self.session.find(pos_id, txn_id) is not None:
                raise Refused("unknown_txn", f"transaction {txn_id} is not committed; "
                               "void it instead of refunding")
            raise Refused("unknown_txn", f"no committed sale {txn_id} from {pos_id} here")
        if stored.quote is None:
            raise Refused("refused", f"sale {txn_id} was recorded without its quote; its "
                           "points cannot be reversed here")
        sale = Quote.from_dict(stored.quote)
        returned = [ReturnLine(line.sku, line.qty) for line in msg.lines]
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
            raise Refused("refused", str(exc)) from exc
        change = apply_refund(view, result)
        record = self.store.record_refund(
            pos_id=pos_id, txn_id=txn_id, refund_id=refund_id, member_id=stored.member_id,
            returned=asked, entries=result.entries if stored.member_id else (),
            member_after=change.after if stored.member_id else None,
            spend_reversed=result.spend_reversed, now=self.clock(),
            detail={"text": result.text, "money_refund": result.money_refund,
                    "points_reversed": result.points_reversed,
                    "points_recredited": result.points_recredited,
                    "deducted": result.deducted, "points_owed": result.points_owed,
                    "stamps": dict(result.stamps)})
        reply = self._awarded(pos_id, txn_id, record.member_id, record.points,
                              record.balance_after, record.repeated,
                              # money kept back for points already spent
                              result.deducted or None)
        log.info("refund %s/%s/%s: %+d pts to %s", pos_id, txn_id, refund_id, record.points,
                 record.member_id or "no member")
        return reply

    def _on_status(self, msg: TxnStatusRequest) -> TxnStatus:
        pos_id, txn_id = msg.pos_id, msg.txn_id
        sale = self.store.sale_record(pos_id, txn_id)
        if sale is not None:
            has = sale.member_id is not None
            return TxnStatus(pos_id, txn_id, "refunded" if sale.refunds else "committed",
                             sale.points + sale.refunded_points,
                             sale.last_balance if has else None)
        voided = self.session.find_voided(pos_id, txn_id)
        if voided is not None:
            return TxnStatus(pos_id, txn_id, "voided", 0, voided.balance)
        txn = self.session.find(pos_id, txn_id)
        if txn is not None:
            q = txn.quote
            return TxnStatus(pos_id, txn_id, "open",
                             q.points_total - q.redeem_points if q is not None else 0,
                             txn.view.balance if txn.view is not None and
                             txn.member is not None else None)
        return TxnStatus(pos_id, txn_id, "unknown", 0, None)

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
