"""Member-bound offers and the cashier's line in the terminal's store.

Central issues offers (``issued_offers``) and chooses each member's cashier line; terminals
pull both (entities ``offers`` and ``cashier_lines``). An offer is read when a basket is
quoted (merged into the member's coupons by :mod:`pos_loyalty.store.engine_state`), and its
use is written in the sale's own transaction (:func:`record_uses`), then pushed to central
once (:func:`unpushed_uses`, :func:`mark_pushed`). A pulled row never undoes a use made
here that central has not heard of yet.

The cashier's line is read on the tap path with the member itself (one query,
:mod:`pos_loyalty.store.lookup`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from pos_loyalty.errors import StoreError

STATUSES = frozenset({"live", "used", "expired"})
MAX_PUSH = 500  # uses per push request


@dataclass(frozen=True)
class HeldOffer:
    """A live offer a member holds here: one use of coupon ``code`` until ``expires_at``."""

    issue_id: str
    code: str
    expires_at: datetime


@dataclass(frozen=True)
class OfferUse:
    """An offer used by a sale: which, in which sale, and the money off it gave."""

    issue_id: str
    txn_ref: str
    discount: int


@dataclass(frozen=True)
class PendingUse:
    """A use made here that central has not acknowledged."""

    issue_id: str
    txn_ref: str
    used_at: datetime
    discount: int


def _stamp(value: datetime) -> str:
    """A time as SQLAlchemy stores a SQLite DateTime (so the ORM reads it back)."""
    return value.isoformat(sep=" ", timespec="microseconds")


def _time(value: Any, what: str) -> datetime:
    """A time from central or the store as naive UTC."""
    if isinstance(value, datetime):
        t = value
    else:
        try:
            t = datetime.fromisoformat(str(value))
        except ValueError as exc:
            raise StoreError(f"{what}: not a time: {value!r}") from exc
    return t if t.tzinfo is None else t.astimezone(UTC).replace(tzinfo=None)


def apply_pulled_offers(conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
    """Upsert offers pulled from central; a use made here (``status`` used) is kept."""
    values = []
    for row in rows:
        if len(row) != 5:
            raise StoreError(f"central sent a malformed offer row: {row!r}")
        issue_id, member_id, code, expires_at, status = row
        if not all(isinstance(v, str) and v for v in (issue_id, member_id, code)) \
                or status not in STATUSES:
            raise StoreError(f"central sent a malformed offer row: {row!r}")
        values.append((issue_id, member_id, code,
                       _stamp(_time(expires_at, f"offer {issue_id} expires_at")), status))
    conn.exec_driver_sql(
        "INSERT INTO member_offers (issue_id, member_id, code, expires_at, status, discount, "
        "pushed) VALUES (?, ?, ?, ?, ?, 0, 1) ON CONFLICT(issue_id) DO UPDATE SET "
        "member_id = excluded.member_id, code = excluded.code, "
        "expires_at = excluded.expires_at, status = CASE WHEN member_offers.status = 'used' "
        "THEN 'used' ELSE excluded.status END", values)


def apply_pulled_lines(conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
    """Upsert the cashier's lines pulled from central."""
    values = []
    for row in rows:
        if len(row) != 3 or not isinstance(row[0], str) or not isinstance(row[1], str) \
                or not isinstance(row[2], bool | int):
            raise StoreError(f"central sent a malformed cashier line: {row!r}")
        values.append((row[0], row[1][:80], bool(row[2])))
    conn.exec_driver_sql(
        "INSERT INTO cashier_lines (member_id, line, birthday) VALUES (?, ?, ?) "
        "ON CONFLICT(member_id) DO UPDATE SET line = excluded.line, "
        "birthday = excluded.birthday", values)


def live_offers(engine: Engine, member_id: str, now: datetime) -> tuple[HeldOffer, ...]:
    """The member's offers usable at ``now`` (naive UTC), soonest to expire first."""
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT issue_id, code, expires_at FROM member_offers "
                "WHERE member_id = ? AND status = 'live'", (member_id,)).all()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the offers of member {member_id}: {exc}") from exc
    held = [HeldOffer(str(r[0]), str(r[1]), _time(r[2], f"offer {r[0]}")) for r in rows]
    return tuple(sorted((o for o in held if o.expires_at > now),
                        key=lambda o: (o.expires_at, o.issue_id)))


def record_uses(conn: Connection, uses: Sequence[OfferUse], now: datetime) -> None:
    """Mark offers used by a sale (the caller's transaction: the sale's own).

    Whatever the row's status (a pull may have just said central saw a use elsewhere), the
    use is recorded and queued for central, which reports a second use for review.
    """
    for use in uses:
        done = conn.exec_driver_sql(
            "UPDATE member_offers SET status = 'used', used_at = ?, used_txn = ?, "
            "discount = ?, pushed = 0 WHERE issue_id = ?",
            (_stamp(now), use.txn_ref, use.discount, use.issue_id)).rowcount
        if done != 1:
            raise StoreError(f"offer {use.issue_id} is not held here")


def unpushed_uses(engine: Engine, limit: int = MAX_PUSH) -> list[PendingUse]:
    """Uses made here that central has not acknowledged, oldest first."""
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT issue_id, used_txn, used_at, discount FROM member_offers "
                "WHERE pushed = 0 ORDER BY used_at, issue_id LIMIT ?", (limit,)).all()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read offer uses: {exc}") from exc
    return [PendingUse(str(r[0]), str(r[1] or ""), _time(r[2], f"offer {r[0]}"), int(r[3]))
            for r in rows]


def mark_pushed(engine: Engine, issue_ids: Sequence[str]) -> None:
    """Central has answered these uses."""
    if not issue_ids:
        return
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE member_offers SET pushed = 1 WHERE issue_id = ?",
                                 [(i,) for i in issue_ids])
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot update offer uses: {exc}") from exc
