"""The ledger: checked ingest of pushed events, balances, central adjustments.

Ingest checks every pushed event with the pure rules of :mod:`pos_loyalty.server.checks`
(what fails is stored held, not applied), answers repeated or changed ids as conflicts and
flags reused or skipped sequence numbers; a balance is always the sum of the member's
applied ledger rows (:func:`pos_loyalty.server.review.queries.integrity` checks it).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Connection, func, or_, select, update

from pos_loyalty.errors import AuthError
from pos_loyalty.ids import uuid7
from pos_loyalty.rules.refund import COVER_MARK
from pos_loyalty.server.checks import (
    REFUND_MARK,
    BatchState,
    MemberFacts,
    RefundFacts,
    SaleFacts,
    Verdict,
    check_event,
    note_sale,
    sale_ref,
)
from pos_loyalty.server.db import Database, Refused, pg_binary
from pos_loyalty.server.stores.queries import policy_in
from pos_loyalty.server.terminals.queries import TerminalAuth
from pos_loyalty.store.central_models import (
    Balance,
    LedgerEvent,
    Member,
    Overdraft,
    RedeemHold,
    ReviewItem,
    Terminal,
)

log = logging.getLogger("pos_loyalty.server")

KINDS = ("earn", "redeem", "reversal", "adjust", "expire")
CENTRAL_TERMINAL = "central"


class EventIn(NamedTuple):
    """One ledger event as a terminal pushes it (already validated for shape); a tuple,
    since a push makes thousands of them."""

    event_id: str
    terminal_id: str
    terminal_seq: int
    member_id: str
    kind: str
    points: int
    txn_ref: str
    terminal_time: datetime  # naive UTC
    offline: bool = True


def _content(ev: EventIn) -> tuple[Any, ...]:
    """What must match for a re-pushed event id to be the same event."""
    return (ev.member_id, ev.terminal_id, ev.terminal_seq, ev.kind, ev.points, ev.txn_ref,
            ev.terminal_time, ev.offline)


def _event_json(ev: EventIn) -> str:
    d = ev._asdict()
    d["terminal_time"] = ev.terminal_time.isoformat()
    return json.dumps(d, sort_keys=True)


class EventResult(NamedTuple):
    event_id: str
    terminal_seq: int
    status: str  # "stored", "held", "duplicate" or "conflict"
    flags: str = ""
    reason: str = ""


@dataclass(frozen=True)
class PushOutcome:
    results: list[EventResult]
    acked_seq: int
    server_time: datetime
    overdrafts: int = 0
    held: int = 0
    conflicts: int = 0


def push(db: Database, auth: TerminalAuth, events: Sequence[EventIn], *,
         clock_offset_ms: int | None = None) -> PushOutcome:
    """Check and store a batch; balances move only for new events that pass every rule.

    Every event must carry the credential's terminal_id (AuthError 403 otherwise): a
    terminal cannot write another's ledger. Events failing a rule are stored held.
    """
    for ev in events:
        if ev.terminal_id != auth.terminal_id:
            log.warning("push refused: terminal %s sent an event of terminal %s",
                        auth.terminal_id, ev.terminal_id)
            raise AuthError(
                f"event {ev.event_id} belongs to terminal {ev.terminal_id}, "
                f"not to {auth.terminal_id}", status=403)
    now = db.clock()
    return db.write(lambda conn: _ingest_tx(
        db, conn, auth.terminal_id, auth.store_id, events, now, clock_offset_ms))


def _ingest_tx(db: Database, conn: Connection, terminal_id: str, store_id: str,
               events: Sequence[EventIn], now: datetime,
               clock_offset_ms: int | None) -> PushOutcome:
    term = conn.execute(select(
        Terminal.acked_seq, Terminal.max_seq, Terminal.earn_day, Terminal.earn_day_points,
    ).where(Terminal.terminal_id == terminal_id).with_for_update()).one()
    results: list[EventResult | None] = [None] * len(events)
    reviews: list[dict[str, Any]] = []

    def review(kind: str, ev: EventIn, detail: str) -> None:
        reviews.append({"item_id": str(uuid7()), "kind": kind, "terminal_id": terminal_id,
                        "store_id": store_id, "event_id": ev.event_id, "detail": detail,
                        "created_at": now, "resolved": False})

    # 1. ids: a repeat inside the batch, or a known id with other content, is a conflict
    first: dict[str, int] = {}
    for i, ev in enumerate(events):
        if ev.event_id in first:
            results[i] = EventResult(ev.event_id, ev.terminal_seq, "conflict", "",
                                     "event_id repeated inside the batch")
            review("conflict", ev, "repeated inside one push: " + _event_json(ev))
        else:
            first[ev.event_id] = i
    known = _known_events(db, conn, list(first))
    new: list[int] = []
    for event_id, i in first.items():
        ev = events[i]
        old = known.get(event_id)
        if old is None:
            new.append(i)
        elif old == _content(ev):
            results[i] = EventResult(event_id, ev.terminal_seq, "duplicate")
        else:
            results[i] = EventResult(event_id, ev.terminal_seq, "conflict", "",
                                     "event_id already stored with other content")
            review("conflict", ev, "known id, other content: " + _event_json(ev))
    # 2. sequence: a number another event already holds, or a jump, is flagged
    max_seq = int(term.max_seq)
    low = [events[i].terminal_seq for i in new if events[i].terminal_seq <= max_seq]
    taken = _taken_seqs(conn, terminal_id, low) if low else set()
    horizon = now + db.future_tolerance
    stale = now - timedelta(days=365)
    clock_off = clock_offset_ms is not None and \
        abs(clock_offset_ms) > db.future_tolerance.total_seconds() * 1000
    flags: dict[int, str] = {}
    for i in new:
        ev = events[i]
        f: list[str] = []
        if ev.terminal_seq in taken:
            f.append("seq_reuse")
            review("seq_reuse", ev, f"terminal_seq {ev.terminal_seq} already used by "
                   "another event: " + _event_json(ev))
        elif ev.terminal_seq > max_seq + 1:
            f.append("seq_gap")
            review("seq_gap", ev, f"terminal_seq jumped from {max_seq} to "
                   f"{ev.terminal_seq}: " + _event_json(ev))
        taken.add(ev.terminal_seq)
        max_seq = max(max_seq, ev.terminal_seq)
        if ev.terminal_time > horizon:
            f.append("future")
        if clock_off or ev.terminal_time < stale:
            f.append("clock")
        flags[i] = ",".join(f)
    # 3. the rules, in batch order, over what central knows of these members
    day = now.date()
    state = _batch_state(db, conn, terminal_id, store_id, [events[i] for i in new],
                              int(term.earn_day_points) if term.earn_day == day else 0)
    online = confirmed_online(conn, terminal_id, [
        (events[i].event_id, events[i].member_id, events[i].points) for i in new
        if events[i].kind == "redeem"])
    rows: list[dict[str, Any]] = []
    verdicts: dict[str, Verdict] = {}
    for i in new:
        ev = events[i]
        verdict = check_event(ev, state, confirmed=ev.event_id in online)
        if verdict.status == "applied":
            note_sale(state, ev)
        verdicts[ev.event_id] = verdict
        rows.append({
            "member_id": ev.member_id, "event_id": ev.event_id, "terminal_id": terminal_id,
            "store_id": store_id, "terminal_seq": ev.terminal_seq, "kind": ev.kind,
            "points": ev.points, "txn_ref": ev.txn_ref, "terminal_time": ev.terminal_time,
            "received_at": now, "offline": ev.offline, "flags": flags[i],
            "status": verdict.status, "reason": verdict.reason})
    inserted: set[str] = set()
    if rows and db.is_pg:
        inserted = _pg_insert_events(conn, rows)
    elif rows:
        stmt = (db.insert(LedgerEvent)
                .on_conflict_do_nothing(index_elements=[LedgerEvent.member_id,
                                                        LedgerEvent.event_id])
                .returning(LedgerEvent.event_id))
        inserted = set(conn.execute(stmt, rows).scalars())
    deltas: dict[str, int] = {}
    short_rows = []
    held = 0
    for i in new:
        ev = events[i]
        verdict = verdicts[ev.event_id]
        if ev.event_id not in inserted:  # a concurrent push stored it first
            results[i] = EventResult(ev.event_id, ev.terminal_seq, "duplicate")
            continue
        if verdict.status == "held":
            held += 1
            results[i] = EventResult(ev.event_id, ev.terminal_seq, "held", flags[i],
                                     verdict.reason)
            log.warning("held event %s of terminal %s for member %s (%s %d): %s",
                        ev.event_id, terminal_id, ev.member_id, ev.kind, ev.points,
                        verdict.reason)
            continue
        results[i] = EventResult(ev.event_id, ev.terminal_seq, "stored", flags[i])
        deltas[ev.member_id] = deltas.get(ev.member_id, 0) + ev.points
        if verdict.short > 0:
            short_rows.append({
                "member_id": ev.member_id, "event_id": ev.event_id,
                "terminal_id": terminal_id, "store_id": store_id,
                "points_short": verdict.short, "balance_after": verdict.balance_after,
                "created_at": now, "resolved": False})
    if deltas:
        apply_deltas(db, conn, deltas)
    used = [ev_id for ev_id in online if ev_id in inserted
            and verdicts[ev_id].status == "applied"]
    if used:
        conn.execute(update(RedeemHold).where(RedeemHold.hold_id.in_(used))
                     .values(status="used"))
    if short_rows:
        conn.execute(db.insert(Overdraft).on_conflict_do_nothing(), short_rows)
        for r in short_rows:
            log.warning("overdraft: member %s short %d points after event %s of %s",
                        r["member_id"], r["points_short"], r["event_id"], terminal_id)
    if reviews:
        conn.execute(db.insert(ReviewItem), reviews)
        for r in reviews:
            log.warning("for review: %s, event %s of terminal %s", r["kind"],
                        r["event_id"], terminal_id)
    final = [r for r in results if r is not None]
    acked = _advance_terminal(conn, terminal_id, int(term.acked_seq), final, now,
                                   clock_offset_ms, max_seq=max_seq, day=day,
                                   day_earned=state.day_earned)
    return PushOutcome(final, acked, now, len(short_rows), held,
                       sum(1 for r in final if r.status == "conflict"))


def confirmed_online(conn: Connection, terminal_id: str,
                     events: Sequence[tuple[str, str, int]]) -> set[str]:
    """Which of ``events`` ((event_id, member_id, points)) central confirmed online
    (:mod:`~pos_loyalty.server.ledger.holds`): an unused hold of this terminal with that id,
    that member and at least those points. An expired hold still covers its event: central
    confirmed it while it was held."""
    if not events:
        return set()
    holds = {str(h[0]): (str(h[1]), int(h[2])) for h in conn.execute(select(
        RedeemHold.hold_id, RedeemHold.member_id, RedeemHold.points).where(
        RedeemHold.hold_id.in_([e[0] for e in events]),
        RedeemHold.terminal_id == terminal_id, RedeemHold.status == "held"))}
    return {event_id for event_id, member_id, points in events
            if (h := holds.get(event_id)) is not None and h[0] == member_id
            and 0 < -points <= h[1]}


def _known_events(db: Database, conn: Connection,
                  event_ids: list[str]) -> dict[str, tuple[Any, ...]]:
    """The stored content of those of ``event_ids`` central already holds."""
    if not event_ids:
        return {}
    cols = (LedgerEvent.event_id, LedgerEvent.member_id, LedgerEvent.terminal_id,
            LedgerEvent.terminal_seq, LedgerEvent.kind, LedgerEvent.points,
            LedgerEvent.txn_ref, LedgerEvent.terminal_time, LedgerEvent.offline)
    if db.is_pg:
        sql = ("SELECT event_id, member_id, terminal_id, terminal_seq, kind, points, "
               "txn_ref, terminal_time, offline FROM ledger_events "
               "WHERE event_id = ANY(%s::varchar[])")
        found = pg_binary(conn, sql, (event_ids,))
    else:
        found = [tuple(r) for r in conn.execute(
            select(*cols).where(LedgerEvent.event_id.in_(event_ids)))]
    return {str(r[0]): tuple(r[1:]) for r in found}


def _taken_seqs(conn: Connection, terminal_id: str, seqs: list[int]) -> set[int]:
    found = conn.execute(select(LedgerEvent.terminal_seq).where(
        LedgerEvent.terminal_id == terminal_id, LedgerEvent.terminal_seq.in_(seqs))).scalars()
    return {int(s) for s in found}


def _batch_state(db: Database, conn: Connection, terminal_id: str, store_id: str,
                 events: list[EventIn], day_earned: int) -> BatchState:
    """Load what the rules need: only debited members' balances, stores and overdrafts."""
    policy = policy_in(db, conn, store_id)
    member_ids = sorted({ev.member_id for ev in events})
    if not member_ids:
        return BatchState(policy, store_id, day_earned, 0, {})
    known: Iterable[str]
    if db.is_pg:
        known = (r[0] for r in pg_binary(
            conn, "SELECT member_id FROM members WHERE member_id = ANY(%s::varchar[])",
            (member_ids,)))
    else:
        known = conn.execute(select(Member.member_id).where(
            Member.member_id.in_(member_ids))).scalars()
    members = {str(m): MemberFacts() for m in known}
    debited = sorted({ev.member_id for ev in events
                      if ev.points < 0 and ev.member_id in members})
    terminal_overdraft = 0
    if debited:
        for m, bal in conn.execute(select(Balance.member_id, Balance.balance).where(
                Balance.member_id.in_(debited)).order_by(Balance.member_id)
                .with_for_update()).all():
            members[m].balance = int(bal)
        for m, stores in member_stores(conn, debited).items():
            members[m].stores = stores
        open_od = select(Overdraft.member_id, func.sum(Overdraft.points_short)).where(
            Overdraft.terminal_id == terminal_id, Overdraft.resolved.is_(False)
        ).group_by(Overdraft.member_id)
        for m, short in conn.execute(open_od).all():
            terminal_overdraft += int(short)
            if m in members:
                members[m].overdraft_here = int(short)
    state = BatchState(policy, store_id, day_earned, terminal_overdraft, members)
    refs = {(ev.member_id, ref) for ev in events if ev.kind == "reversal"
            and ev.member_id in members and (ref := sale_ref(ev.txn_ref))}
    for member_id, ref in sorted(refs):
        sale = state.sales.setdefault((member_id, ref), SaleFacts())
        for kind, txn_ref, points in conn.execute(select(
                LedgerEvent.kind, LedgerEvent.txn_ref, LedgerEvent.points).where(
                LedgerEvent.member_id == member_id, LedgerEvent.status == "applied",
                or_(LedgerEvent.txn_ref == ref, LedgerEvent.txn_ref == ref + "/redeem",
                    LedgerEvent.txn_ref.startswith(ref + REFUND_MARK)))).all():
            if kind == "earn" and txn_ref == ref:
                sale.earned += int(points)
            elif kind == "redeem":
                sale.redeemed += -int(points)
            elif kind == "reversal" and txn_ref.endswith(COVER_MARK):
                key = (member_id, txn_ref.removesuffix(COVER_MARK))
                state.refunds.setdefault(key, RefundFacts()).covered += int(points)
            elif kind == "reversal" and int(points) < 0:
                state.refunds.setdefault((member_id, txn_ref),
                                         RefundFacts()).taken += -int(points)
            elif kind == "reversal" and int(points) > 0:
                sale.recredited += int(points)
    return state


def member_stores(conn: Connection, member_ids: Sequence[str]) -> dict[str, set[str]]:
    """The stores where each of ``member_ids`` has applied ledger events of a terminal
    (store IT's adjustments at central do not count); members with none are left out."""
    found: dict[str, set[str]] = {}
    for m, s in conn.execute(select(LedgerEvent.member_id, LedgerEvent.store_id).where(
            LedgerEvent.member_id.in_(member_ids), LedgerEvent.status == "applied",
            LedgerEvent.terminal_id != CENTRAL_TERMINAL).distinct()).all():
        found.setdefault(str(m), set()).add(str(s))
    return found


def apply_deltas(db: Database, conn: Connection, deltas: dict[str, int]) -> None:
    """Add each member's delta to its balance, rows locked in member order."""
    if db.is_pg:
        _pg_apply_deltas(conn, deltas)
        return
    stamp = db.stamp(conn)
    ins = db.insert(Balance).values(change_xid=stamp)
    upsert = ins.on_conflict_do_update(
        index_elements=[Balance.member_id],
        set_={"balance": Balance.balance + ins.excluded.balance, "change_xid": stamp},
    )
    # sorted: concurrent batches lock balance rows in one order, so no deadlock
    conn.execute(upsert, [{"member_id": m, "balance": deltas[m]} for m in sorted(deltas)])


def _pg_insert_events(conn: Connection, rows: list[dict[str, Any]]) -> set[str]:
    """One statement for the whole batch: arrays in, ``unnest`` them, skip duplicates."""
    cols = ("member_id", "event_id", "terminal_id", "store_id", "terminal_seq", "kind",
            "points", "txn_ref", "terminal_time", "received_at", "offline", "flags",
            "status", "reason")
    types = ("varchar", "varchar", "varchar", "varchar", "bigint", "varchar", "bigint",
             "varchar", "timestamp", "timestamp", "boolean", "varchar", "varchar",
             "varchar")
    arrays = tuple([r[c] for r in rows] for c in cols)
    sql = (f"INSERT INTO ledger_events ({', '.join(cols)}) SELECT * FROM unnest("
           + ", ".join(f"%s::{t}[]" for t in types)
           + ") ON CONFLICT (member_id, event_id) DO NOTHING RETURNING event_id")
    return {r[0] for r in pg_binary(conn, sql, arrays)}


def _pg_apply_deltas(conn: Connection, deltas: dict[str, int]) -> None:
    """Add each member's delta; rows locked in member order so batches never deadlock."""
    members = sorted(deltas)
    sql = ("INSERT INTO balances (member_id, balance, change_xid) "
           "SELECT m, d, pg_current_xact_id()::text::bigint "
           "FROM unnest(%s::varchar[], %s::bigint[]) AS u(m, d) ORDER BY m "
           "ON CONFLICT (member_id) DO UPDATE SET balance = balances.balance + "
           "excluded.balance, change_xid = excluded.change_xid")
    pg_binary(conn, sql, (members, [deltas[m] for m in members]), rows=False)


def _advance_terminal(conn: Connection, terminal_id: str, acked: int,
                      results: Sequence[EventResult], now: datetime,
                      clock_offset_ms: int | None, *, max_seq: int, day: date,
                      day_earned: int) -> int:
    """Move acked_seq over the contiguous sequence numbers now answered; record the
    highest sequence, the day's earned points, last contact and clock offset."""
    for seq in sorted(r.terminal_seq for r in results):
        if seq == acked + 1:
            acked = seq
        elif seq > acked + 1:
            break  # a gap: acked_seq stays below it until the missing events arrive
    values: dict[str, Any] = {"acked_seq": acked, "last_seen_at": now, "max_seq": max_seq,
                              "earn_day": day, "earn_day_points": day_earned}
    if clock_offset_ms is not None:
        values["clock_offset_ms"] = clock_offset_ms
    conn.execute(update(Terminal).where(Terminal.terminal_id == terminal_id).values(values))
    return acked


def central_event(member_id: str, points: int, reason: str, now: datetime,
                  note: str = "") -> dict[str, Any]:
    """A ledger row central writes itself (terminal ``central``), applied at once."""
    return {"member_id": member_id, "event_id": str(uuid7()), "terminal_id": CENTRAL_TERMINAL,
            "store_id": CENTRAL_TERMINAL, "terminal_seq": 0, "kind": "adjust",
            "points": points, "txn_ref": reason[:140], "terminal_time": now,
            "received_at": now, "offline": False, "flags": "", "status": "applied",
            "reason": "", "review_note": note[:200]}


def adjust_points(db: Database, member_id: str, points: int, reason: str = "adjust", *,
                  actor: str = "", allow_negative: bool = True) -> str:
    """A central adjustment by store IT: an ``adjust`` ledger row of terminal ``central``
    whose ``txn_ref`` is the reason and ``review_note`` who made it (the audit trail).

    Returns its event id; StoreError for an unknown member, an empty reason, zero points,
    or (``allow_negative=False``) a debit larger than the balance.
    """
    if not reason.strip():
        raise Refused("a reason is required to adjust points", status=422)
    if points == 0:
        raise Refused("an adjustment of 0 points changes nothing", status=422)
    now = db.clock()
    row = central_event(member_id, points, reason, now, f"by {actor}" if actor else "")

    def tx(conn: Connection) -> None:
        known = conn.execute(select(Member.member_id).where(
            Member.member_id == member_id)).first()
        if known is None:
            raise Refused(f"unknown member {member_id}", status=404)
        if not allow_negative and points < 0:
            bal = int(conn.execute(select(Balance.balance).where(
                Balance.member_id == member_id).with_for_update()).scalar() or 0)
            if bal + points < 0:
                raise Refused(f"member {member_id} has {bal} points; cannot take "
                              f"{-points}")
        conn.execute(db.insert(LedgerEvent).values(**row))
        apply_deltas(db, conn, {member_id: points})

    db.write(tx)
    return str(row["event_id"])


def balance(db: Database, member_id: str) -> int:
    with db.read() as conn:
        value = conn.execute(
            select(Balance.balance).where(Balance.member_id == member_id)).scalar()
    return int(value or 0)


def ledger_sum(db: Database, member_id: str) -> int:
    """Sum of the member's applied ledger rows (held and rejected rows do not count)."""
    with db.read() as conn:
        value = conn.execute(select(func.coalesce(func.sum(LedgerEvent.points), 0))
                             .where(LedgerEvent.member_id == member_id,
                                    LedgerEvent.status == "applied")).scalar_one()
    return int(value)


def ledger_count(db: Database, terminal_id: str | None = None) -> int:
    stmt = select(func.count()).select_from(LedgerEvent)
    if terminal_id is not None:
        stmt = stmt.where(LedgerEvent.terminal_id == terminal_id)
    with db.read() as conn:
        return int(conn.execute(stmt).scalar_one())
