"""Online redemption: central confirms a redemption against the authoritative balance.

A terminal that reaches central when the till asks to redeem sends the points, the member
and the ``event_id`` its redeem event will carry (the hold id). Central, with the member's
balance row locked (so two terminals racing for the same points are served one after the
other), confirms when the balance less the points already held for other redemptions covers
the request, and holds them. The sale's push later brings the redeem event with that id:
ingest (``queries.confirmed_online``) finds its hold, applies the event without the offline
caps (central decided it) and marks the hold used. A voided sale releases its hold; a hold
nobody uses stops counting after ``HOLD_TTL``. A hold is kept ``HOLD_KEPT`` after it ended, then
the member's next confirmation deletes it, so the table holds recent redemptions only.
Terminal credential only; a terminal can hold
no more than the member has, so a stolen one cannot spend beyond the balance either.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Connection, case, delete, func, select, update

from pos_loyalty.server.db import Database, Refused
from pos_loyalty.server.ledger.queries import member_stores
from pos_loyalty.server.stores.queries import policy_in
from pos_loyalty.server.terminals.queries import TerminalAuth
from pos_loyalty.store.central_models import Balance, RedeemHold

HOLD_TTL = timedelta(minutes=15)
"""How long a confirmed redemption keeps its points set aside without its sale's push."""
HOLD_KEPT = timedelta(days=30)
"""How long a hold is kept after its ``HOLD_TTL`` ran out, used, released or not: a sale pushed
that late still finds its confirmation; a later push meets the offline caps."""


@dataclass(frozen=True)
class HoldAnswer:
    """Central's decision: ``confirmed`` with the points held, or not with the reason."""

    hold_id: str
    confirmed: bool
    points: int
    balance: int  # the member's balance at central
    available: int  # what the member may still spend, after this hold
    reason: str = ""


def _active(now: datetime) -> ColumnElement[bool]:
    """Holds that still set points aside."""
    return (RedeemHold.status == "held") & (RedeemHold.expires_at > now)


def confirm(db: Database, auth: TerminalAuth, *, hold_id: str, member_id: str, points: int,
            txn_ref: str, replaces: str | None = None) -> HoldAnswer:
    """Confirm and hold ``points`` of ``member_id`` for the terminal, or say why not.

    ``replaces``: the terminal's earlier hold for the same sale (the till asked again for
    another amount); its points do not count against this request, and it is released in
    the same transaction when this one is confirmed (kept when it is refused).
    Idempotent per ``hold_id``: asked again (a lost answer), the same hold is answered as it
    stands; the same id with other content is a 409.
    """
    if points <= 0:
        raise Refused("points to redeem must be positive", status=422)
    now = db.clock()

    def tx(conn: Connection) -> HoldAnswer:
        # the balance row is locked first: a concurrent confirmation or push of this member
        # waits here, then sees this one's hold (READ COMMITTED reads afresh per statement),
        # a repeat of this very request too; every member has a balance row from their
        # creation, so no row means no such member
        bal = _balance(conn, member_id, lock=True)
        if bal is None:
            return HoldAnswer(hold_id, False, points, 0, 0, "member unknown at central")
        asked_before = _as_it_stands(conn, auth, hold_id, member_id, points, now)
        if asked_before is not None:
            return asked_before
        policy = policy_in(db, conn, auth.store_id)
        _forget_ended(conn, member_id, now)
        held, own = _held(conn, member_id, now, auth.terminal_id, replaces)
        available = bal - held + own
        if points > policy.max_event_points:
            return HoldAnswer(hold_id, False, points, bal, available,
                              f"{points} points is over the per-event cap of "
                              f"{policy.max_event_points}")
        if not policy.debit_other_stores:
            stores = member_stores(conn, [member_id]).get(member_id)
            if stores and auth.store_id not in stores:
                return HoldAnswer(hold_id, False, points, bal, available,
                                  "the member's points were earned at other stores")
        if points > available:
            return HoldAnswer(hold_id, False, points, bal, available,
                              f"the member has {max(0, available)} points to spend")
        made = conn.execute(db.insert(RedeemHold).values(
            hold_id=hold_id, member_id=member_id, terminal_id=auth.terminal_id,
            store_id=auth.store_id, points=points, txn_ref=txn_ref, status="held",
            created_at=now, expires_at=now + HOLD_TTL).on_conflict_do_nothing(
            index_elements=[RedeemHold.hold_id]).returning(RedeemHold.hold_id)).first()
        if made is None:
            # a request with the same id for another member (a forged copy) ran alongside
            # and committed first: refused as for any repeat with other content
            again = _as_it_stands(conn, auth, hold_id, member_id, points, now)
            assert again is not None  # the row that conflicted is committed
            return again
        if own:
            conn.execute(update(RedeemHold).where(RedeemHold.hold_id == replaces)
                         .values(status="released"))
        return HoldAnswer(hold_id, True, points, bal, available - points)

    return db.write(tx)


def _as_it_stands(conn: Connection, auth: TerminalAuth, hold_id: str, member_id: str,
                  points: int, now: datetime) -> HoldAnswer | None:
    """The answer to a repeated ``hold_id``, as its hold stands; None if there is none."""
    hold = conn.execute(select(
        RedeemHold.terminal_id, RedeemHold.member_id, RedeemHold.points,
        RedeemHold.status).where(RedeemHold.hold_id == hold_id)).first()
    if hold is None:
        return None
    if (hold.terminal_id, hold.member_id, hold.points) != (auth.terminal_id, member_id, points):
        raise Refused(f"hold {hold_id} already exists with other content")
    bal = _balance(conn, member_id, lock=False) or 0
    ok = hold.status != "released"
    return HoldAnswer(hold_id, ok, points, bal, bal - _held(conn, member_id, now)[0],
                      "" if ok else "this redemption was released")


def release(db: Database, auth: TerminalAuth, hold_id: str) -> bool:
    """Give back the points of an unused hold of this terminal (its sale was voided or its
    redemption changed); True if a hold was released. Idempotent."""
    def tx(conn: Connection) -> bool:
        got = conn.execute(update(RedeemHold).where(
            RedeemHold.hold_id == hold_id, RedeemHold.terminal_id == auth.terminal_id,
            RedeemHold.status == "held").values(status="released"))
        return bool(got.rowcount)

    return db.write(tx)


def _balance(conn: Connection, member_id: str, *, lock: bool) -> int | None:
    """The member's balance at central, None if there is no such member."""
    stmt = select(Balance.balance).where(Balance.member_id == member_id)
    if lock:
        stmt = stmt.with_for_update()
    got = conn.execute(stmt).scalar()
    return None if got is None else int(got)


def _forget_ended(conn: Connection, member_id: str, now: datetime) -> None:
    """Delete the member's holds that ran out more than ``HOLD_KEPT`` ago (their balance row
    is locked: no other confirmation of theirs runs meanwhile)."""
    conn.execute(delete(RedeemHold).where(RedeemHold.member_id == member_id,
                                          RedeemHold.expires_at < now - HOLD_KEPT))


def _held(conn: Connection, member_id: str, now: datetime, terminal_id: str = "",
          own_hold: str | None = None) -> tuple[int, int]:
    """The points the member's active holds set aside, and of those the points of
    ``own_hold`` if it is one of them and belongs to ``terminal_id`` (else 0)."""
    own = case(((RedeemHold.hold_id == (own_hold or ""))
                & (RedeemHold.terminal_id == terminal_id), RedeemHold.points), else_=0)
    held, mine = conn.execute(select(
        func.coalesce(func.sum(RedeemHold.points), 0), func.coalesce(func.sum(own), 0)).where(
        RedeemHold.member_id == member_id, _active(now))).one()
    return int(held), int(mine)
