"""Sales, refunds and the ledger: what the till worker writes, each as one transaction.

A sale, its ledger events (which are also the sync outbox), the member's balance and engine
state are written in one ``BEGIN IMMEDIATE`` transaction, once per ``(pos_id, txn_id)``; a
refund likewise per refund id. An offline redemption is decided by the caller's policy on
facts read inside that same transaction (:class:`RedeemFacts`), so no sale or sync round can
slip between the check and the write.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, case, func, insert, select, update
from sqlalchemy.orm import Session

from pos_loyalty.errors import StoreError
from pos_loyalty.ids import uuid7
from pos_loyalty.rules import Basket, LedgerEntry, MemberView, Quote
from pos_loyalty.store import sale_outbox
from pos_loyalty.store.engine_state import decode_state, encode_state
from pos_loyalty.store.models import Card, LedgerEvent, Member, Refund, Sale, TerminalState
from pos_loyalty.store.offers import OfferUse, record_uses
from pos_loyalty.store.sqlite import read, translated, write

TXN_REF_MAX = 140  # ledger_events.txn_ref here and at central


def fit_ref(ref: str) -> str:
    """A ledger reference within TXN_REF_MAX: long ones (64-character pos, txn and refund
    ids) keep their start and end in a digest, so they stay distinct and stable."""
    if len(ref) <= TXN_REF_MAX:
        return ref
    digest = hashlib.sha256(ref.encode()).hexdigest()[:32]
    return f"{ref[:TXN_REF_MAX - 33]}#{digest}"


@dataclass(frozen=True)
class SaleResult:
    """The answer to a commit; a repeated commit returns the stored one."""

    pos_id: str
    txn_id: str
    member_id: str | None
    points: int
    balance_after: int
    repeated: bool = False


@dataclass(frozen=True)
class StoredSale:
    """A committed sale as stored: its quote (``Quote.to_dict``) and its refunds so far."""

    pos_id: str
    txn_id: str
    member_id: str | None
    points: int
    balance_after: int
    quote: dict[str, Any] | None
    returned: dict[str, int]      # sku -> units refunded so far
    refunded_points: int          # signed sum of the refunds' points
    last_balance: int | None      # balance after the sale or its latest refund
    refunds: int


@dataclass(frozen=True)
class RefundRecord:
    """The answer to a refund; a repeated refund returns the stored one."""

    pos_id: str
    txn_id: str
    refund_id: str
    member_id: str | None
    points: int
    balance_after: int | None
    repeated: bool = False


@dataclass(frozen=True)
class RedeemFacts:
    """What an enrolled terminal knows when points are redeemed without central.

    ``synced_at``: when the member's balance was last confirmed (the last complete sync
    round), None if central never sent this member; ``*_pending``: points redeemed here
    that central has not acknowledged, for this member and for all members.
    """

    member_id: str
    balance: int
    synced_at: datetime | None
    member_pending: int
    terminal_pending: int


RedeemCheck = Callable[[RedeemFacts], None]
"""The caller's offline policy: returns to allow, raises (its own error) to refuse."""


def _pending_redeemed(conn: Connection, member_id: str | None) -> int:
    # online redemptions (offline = 0) were confirmed by central: not the offline risk
    stmt = select(func.coalesce(func.sum(-LedgerEvent.points), 0)).where(
        LedgerEvent.acked.is_(False), LedgerEvent.points < 0, LedgerEvent.offline.is_(True))
    if member_id is not None:
        stmt = stmt.where(LedgerEvent.member_id == member_id)
    return int(conn.execute(stmt).scalar_one())


def _redeem_facts(conn: Connection, member_id: str) -> RedeemFacts | None:
    """None for a standalone terminal (not enrolled with central: no offline cap)."""
    state = conn.execute(select(TerminalState.server_url, TerminalState.last_sync_at)).first()
    if state is None or state.server_url is None:
        return None
    member = conn.execute(select(Member.balance, Member.balance_synced_at).where(
        Member.member_id == member_id)).first()
    if member is None:
        raise StoreError(f"unknown member {member_id}")
    return RedeemFacts(
        member_id, int(member.balance),
        None if member.balance_synced_at is None else state.last_sync_at,
        _pending_redeemed(conn, member_id), _pending_redeemed(conn, None))


def _append_ledger(conn: Connection, member_id: str, kind: str, points: int, txn_ref: str,
                   now: datetime, *, event_id: str | None = None, offline: bool = True) -> None:
    """One ledger event with the next gap-free sequence number (caller's transaction).

    ``offline`` says who decided it: False only for a redemption central confirmed online,
    whose ``event_id`` is then the hold id central knows it by."""
    nxt, terminal_id = conn.execute(
        update(TerminalState).where(TerminalState.id == 1)
        .values(next_seq=TerminalState.next_seq + 1)
        .returning(TerminalState.next_seq, TerminalState.terminal_id)).one()
    conn.execute(insert(LedgerEvent).values(
        event_id=event_id or str(uuid7()), terminal_id=terminal_id, terminal_seq=nxt - 1,
        member_id=member_id, kind=kind, points=points, txn_ref=txn_ref, terminal_time=now,
        offline=offline, acked=False))


def _write_entries(conn: Connection, entries: Sequence[LedgerEntry], now: datetime,
                   online_redeem: tuple[str, str] | None = None) -> None:
    """The entries as ledger events; ``online_redeem`` (member, hold id): that member's
    redeem entry is the redemption central confirmed online."""
    for e in entries:
        if not e.points:
            continue
        if online_redeem is not None and e.kind == "redeem" and \
                e.member_id == online_redeem[0]:
            _append_ledger(conn, e.member_id, e.kind, e.points, fit_ref(e.ref), now,
                           event_id=online_redeem[1], offline=False)
            online_redeem = None  # one sale, one redeem event
        else:
            _append_ledger(conn, e.member_id, e.kind, e.points, fit_ref(e.ref), now)


def _write_member(conn: Connection, member_id: str, points: int, after: MemberView | None,
                  *, visit: int = 0, spend: int = 0) -> int | None:
    """Move a member's balance by ``points`` (relative: a sync pull may have moved it)
    and store their engine state; the new balance, or None for a member not held here."""
    values: dict[str, Any] = {"balance": Member.balance + points}
    if after is not None:
        values.update(state=encode_state(after), tier=after.tier,
                      lifetime_spend=case((Member.lifetime_spend + spend < 0, 0),
                                          else_=Member.lifetime_spend + spend),
                      visits=Member.visits + visit)
    balance = conn.execute(update(Member).where(Member.member_id == member_id)
                           .values(values).returning(Member.balance)).scalar_one_or_none()
    return None if balance is None else int(balance)


def _prior_sale(conn: Connection, pos_id: str, txn_id: str) -> SaleResult | None:
    row = conn.execute(select(Sale.member_id, Sale.points, Sale.balance_after).where(
        Sale.pos_id == pos_id, Sale.txn_id == txn_id)).first()
    if row is None:
        return None
    return SaleResult(pos_id, txn_id, row.member_id, row.points, row.balance_after,
                      repeated=True)


def _prior_refund(conn: Connection, pos_id: str, txn_id: str,
                  refund_id: str) -> RefundRecord | None:
    r = conn.execute(select(Refund.member_id, Refund.points, Refund.balance_after).where(
        Refund.pos_id == pos_id, Refund.txn_id == txn_id, Refund.refund_id == refund_id)).first()
    if r is None:
        return None
    return RefundRecord(pos_id, txn_id, refund_id, r.member_id, r.points, r.balance_after,
                        repeated=True)


class SalesLedger:
    """Members' engine state, sales, refunds, expiry and the ledger they write."""

    engine: Engine

    # -- members -------------------------------------------------------------------------

    def add_member(
        self, member_id: str, display_name: str, *, card_id: str, uid: str | None = None,
        tier: str | None = None, balance: int = 0,
    ) -> None:
        """A member and their card, held locally (demo data, tests, benches)."""
        with write(self.engine, f"adding member {member_id}") as conn:
            conn.execute(insert(Member).values(
                member_id=member_id, display_name=display_name, tier=tier, balance=balance,
                lifetime_spend=0, visits=0))
            conn.execute(insert(Card).values(card_id=card_id, member_id=member_id,
                                             uid=uid.upper() if uid else None, status="active"))

    def member_count(self) -> int:
        with read(self.engine, "counting members") as conn:
            return int(conn.execute(select(func.count()).select_from(Member)).scalar_one())

    def member_view(self, member_id: str) -> MemberView | None:
        """Everything the rules engine may know of a member (columns + ``members.state``)."""
        stmt = select(Member.member_id, Member.balance, Member.tier, Member.lifetime_spend,
                      Member.visits, Member.birthday, Member.state).where(
            Member.member_id == member_id)
        with read(self.engine, f"reading member {member_id}") as conn:
            row = conn.execute(stmt).first()
        if row is None:
            return None
        return decode_state(row.state, {
            "member_id": row.member_id, "balance": row.balance, "tier": row.tier,
            "lifetime_spend": row.lifetime_spend, "visits": row.visits,
            "birthday": row.birthday})

    # -- sales ---------------------------------------------------------------------------

    def record_sale(
        self, *, pos_id: str, txn_id: str, member_id: str | None, sale: Quote, now: datetime,
        entries: Sequence[LedgerEntry] = (), member_after: MemberView | None = None,
        check_redeem: RedeemCheck | None = None, basket: Basket | None = None,
        online_hold: str | None = None, offer_uses: Sequence[OfferUse] = (),
    ) -> SaleResult:
        """Write a sale with its whole quote, its ledger entries and the member's new engine
        state in one transaction; idempotent per (pos_id, txn_id).

        A sale that redeems points is first put to ``check_redeem`` with the facts as they
        stand inside this transaction (on an enrolled terminal); if it raises, nothing is
        written and its error reaches the caller. ``entries`` for other members (a
        referrer) move their balance too when they are held here; the ledger carries them
        to central either way. The sale's summary for central (:mod:`.sale_outbox`, with
        the categories of ``basket``) is queued in the same transaction.
        ``online_hold``: central confirmed this sale's redemption
        and holds its points under that id (the redeem event's id); no offline check then.
        ``offer_uses``: member-bound offers the sale used, marked used in this same
        transaction.
        """
        online = (member_id, online_hold) if member_id and online_hold and \
            sale.redeem_points else None
        with write(self.engine, f"recording sale {pos_id}/{txn_id}") as conn:
            prior = _prior_sale(conn, pos_id, txn_id)
            if prior is not None:
                return prior
            points, balance_after = 0, 0
            if member_id is not None:
                if sale.redeem_points and check_redeem is not None and online is None:
                    facts = _redeem_facts(conn, member_id)
                    if facts is not None:
                        check_redeem(facts)
                points = sum(e.points for e in entries if e.member_id == member_id)
                got = _write_member(conn, member_id, points, member_after, visit=1,
                                    spend=sale.qualifying_spend)
                if got is None:
                    raise StoreError(f"unknown member {member_id}")
                balance_after = got
                record_uses(conn, offer_uses, now)
            others: dict[str, int] = {}
            for e in entries:
                if e.member_id != member_id:
                    others[e.member_id] = others.get(e.member_id, 0) + e.points
            for other, pts in sorted(others.items()):
                _write_member(conn, other, pts, None)
            _write_entries(conn, entries, now, online)
            lines = [] if basket is None else [
                {"sku": ln.sku, "category": ln.category} for ln in basket.lines]
            conn.execute(insert(Sale).values(
                pos_id=pos_id, txn_id=txn_id, member_id=member_id,
                basket_total=sale.basket_total, discount_total=sale.discount_total,
                points=points, balance_after=balance_after, committed_at=now,
                detail=json.dumps({"summary": sale.summary, "quote": sale.to_dict(),
                                   "basket": lines}, sort_keys=True)))
            sale_outbox.add(conn, sale_outbox.sale_body(
                pos_id=pos_id, txn_id=txn_id, member_id=member_id, quote=sale, basket=basket,
                points=points, now=now), now)
        return SaleResult(pos_id, txn_id, member_id, points, balance_after)

    def redeem_facts(self, member_id: str) -> RedeemFacts | None:
        """The offline-redemption facts for this member now, or None when this terminal is
        not enrolled with central (a standalone store has no cap). Read-only: the sale's
        commit checks again, atomically with its write."""
        with read(self.engine, f"checking redemption for {member_id}") as conn:
            return _redeem_facts(conn, member_id)

    def find_sale(self, pos_id: str, txn_id: str) -> SaleResult | None:
        """The stored answer for a committed transaction, or None."""
        with read(self.engine, f"reading sale {pos_id}/{txn_id}") as conn:
            return _prior_sale(conn, pos_id, txn_id)

    def sale_record(self, pos_id: str, txn_id: str) -> StoredSale | None:
        """A committed sale with its stored quote and what its refunds did so far."""
        with read(self.engine, f"reading sale {pos_id}/{txn_id}") as conn:
            sale = conn.execute(select(Sale).where(Sale.pos_id == pos_id,
                                                   Sale.txn_id == txn_id)).first()
            if sale is None:
                return None
            refunds = conn.execute(select(Refund).where(
                Refund.pos_id == pos_id, Refund.txn_id == txn_id).order_by(Refund.id)).all()
        try:
            detail = json.loads(sale.detail or "{}")
            returned: dict[str, int] = {}
            for r in refunds:
                for sku, qty in json.loads(r.lines).items():
                    returned[sku] = returned.get(sku, 0) + int(qty)
        except (ValueError, TypeError, AttributeError) as exc:
            raise StoreError(f"sale {pos_id}/{txn_id}: stored detail is damaged: {exc}") from exc
        quote = detail.get("quote") if isinstance(detail, dict) else None
        balance_after = refunds[-1].balance_after if refunds else sale.balance_after
        return StoredSale(
            pos_id, txn_id, sale.member_id, sale.points, sale.balance_after,
            quote if isinstance(quote, dict) else None, returned,
            sum(r.points for r in refunds), balance_after, len(refunds))

    # -- refunds -------------------------------------------------------------------------

    def find_refund(self, pos_id: str, txn_id: str, refund_id: str) -> RefundRecord | None:
        """The stored answer to a refund already applied, or None."""
        with read(self.engine, f"reading refund {refund_id}") as conn:
            return _prior_refund(conn, pos_id, txn_id, refund_id)

    def record_refund(
        self, *, pos_id: str, txn_id: str, refund_id: str, member_id: str | None,
        returned: Mapping[str, int], entries: Sequence[LedgerEntry],
        member_after: MemberView | None, spend_reversed: int, now: datetime,
        detail: Mapping[str, Any] | None = None,
    ) -> RefundRecord:
        """Write a refund's ledger entries, the member's state after it and the refund itself
        in one transaction; idempotent per (pos_id, txn_id, refund_id)."""
        with write(self.engine, f"recording refund {refund_id}") as conn:
            prior = _prior_refund(conn, pos_id, txn_id, refund_id)
            if prior is not None:
                return prior
            points, balance_after = 0, None
            if member_id is not None:
                points = sum(e.points for e in entries if e.member_id == member_id)
                balance_after = _write_member(conn, member_id, points, member_after,
                                              spend=-spend_reversed)
                if balance_after is None:
                    raise StoreError(f"unknown member {member_id}")
            _write_entries(conn, entries, now)
            sale_detail = conn.execute(select(Sale.detail).where(
                Sale.pos_id == pos_id, Sale.txn_id == txn_id)).scalar_one_or_none()
            try:
                stored = json.loads(sale_detail or "{}")
            except ValueError:
                stored = {}
            sale_outbox.add(conn, sale_outbox.refund_body(
                pos_id=pos_id, txn_id=txn_id, refund_id=refund_id, member_id=member_id,
                sale_detail=stored if isinstance(stored, dict) else {}, returned=returned,
                detail=detail or {}, points=points, now=now), now)
            conn.execute(insert(Refund).values(
                pos_id=pos_id, txn_id=txn_id, refund_id=refund_id, member_id=member_id,
                points=points, balance_after=balance_after,
                lines=json.dumps(dict(returned), sort_keys=True), created_at=now,
                detail=json.dumps(dict(detail or {}), sort_keys=True)))
            conn.execute(update(Sale).where(Sale.pos_id == pos_id, Sale.txn_id == txn_id)
                         .values(status="refunded"))
        return RefundRecord(pos_id, txn_id, refund_id, member_id, points, balance_after)

    # -- expiry --------------------------------------------------------------------------

    def members_with_lots(self) -> list[str]:
        """Members whose engine state holds points lots (the only ones expiry can touch)."""
        with read(self.engine, "listing members for expiry") as conn:
            return list(conn.execute(select(Member.member_id).where(
                Member.state.contains('"lots"')).order_by(Member.member_id)).scalars())

    def apply_entries(self, member_after: MemberView, entries: Sequence[LedgerEntry],
                      now: datetime) -> int:
        """Write a member's own ledger entries (expiry) and state; skips refs already in the
        ledger, so a run repeated after a crash writes nothing twice. Returns points moved."""
        member_id = member_after.member_id
        with write(self.engine, f"expiry for member {member_id}") as conn:
            refs = [fit_ref(e.ref) for e in entries]
            seen = set(conn.execute(select(LedgerEvent.txn_ref).where(
                LedgerEvent.member_id == member_id, LedgerEvent.txn_ref.in_(refs))).scalars())
            fresh = [e for e in entries
                     if fit_ref(e.ref) not in seen and e.member_id == member_id]
            points = sum(e.points for e in fresh)
            if _write_member(conn, member_id, points, member_after) is None:
                raise StoreError(f"unknown member {member_id}")
            _write_entries(conn, fresh, now)
        return points

    # -- the ledger ----------------------------------------------------------------------

    def ledger(self, member_id: str | None = None) -> list[LedgerEvent]:
        """Ledger events in sequence order (all, or one member's)."""
        stmt = select(LedgerEvent).order_by(LedgerEvent.terminal_seq)
        if member_id is not None:
            stmt = stmt.where(LedgerEvent.member_id == member_id)
        with translated("reading the ledger"), Session(self.engine) as s:
            return list(s.scalars(stmt))
