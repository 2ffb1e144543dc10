"""Product tags linked to their buyers and reorder coupons taken at this terminal.

Both are written in the terminal's own database before the till is told (offline first) and
pushed to central by the sync worker (:mod:`pos_loyalty.sync.phone`), like ledger events:

* ``tag_links``: a product tag tapped during a member's sale. One row per (tag, member);
  ``status`` is ``pending`` until central answers, then its answer (``linked``, ``known``,
  ``conflict``, ``unknown_member``). A conflict (the tag's first link is someone else's) is
  kept for review and never sent again.
* ``tag_coupons``: a coupon code used in a sale here. ``confirmed``: central marked it used
  before the till was answered; accepted offline (``offline`` true, within the ``[phone]``
  bounds): ``pending`` until pushed once its sale is committed, then ``redeemed`` or
  ``conflict`` (central keeps a review item for store IT). A sale that does not use its
  coupon (voided, or the product taken off the basket) gives it back: an offline one is
  forgotten (never pushed), a confirmed one is ``releasing`` until central has it back,
  then forgotten too, and the code can be used again.

Every database error leaves as StoreError.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Engine,
    Integer,
    String,
    Text,
    UniqueConstraint,
    and_,
    delete,
    exists,
    func,
    select,
    update,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, mapped_column

from pos_loyalty.store.models import Base, LedgerEvent, Sale
from pos_loyalty.store.sqlite import read, write

MAX_PUSH = 100  # links per push request (central's limit)
REF_MAX = 64


def coupon_ref(pos_id: str, txn_id: str) -> str:
    """The sale as central records a coupon's use (at most 64 characters, stable)."""
    ref = f"{pos_id}/{txn_id}"
    if len(ref) <= REF_MAX:
        return ref
    return f"{ref[:REF_MAX - 25]}#{hashlib.sha256(ref.encode()).hexdigest()[:24]}"


class TagLink(Base):
    """A product tag tapped during a member's sale (the item's buyer), for central."""

    __tablename__ = "tag_links"
    __table_args__ = (UniqueConstraint("uid", "member_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uid: Mapped[str] = mapped_column(String(20))
    sku: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[str] = mapped_column(String(64))
    txn_ref: Mapped[str] = mapped_column(String(140))
    linked_at: Mapped[datetime] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)


class TagCoupon(Base):
    """A product tag's reorder coupon used in a sale at this terminal."""

    __tablename__ = "tag_coupons"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    pos_id: Mapped[str] = mapped_column(String(64))
    txn_id: Mapped[str] = mapped_column(String(64))
    sku: Mapped[str | None] = mapped_column(String(64), nullable=True)
    percent: Mapped[int] = mapped_column(Integer)
    max_value: Mapped[int | None] = mapped_column(Integer, nullable=True)
    accepted_at: Mapped[datetime] = mapped_column(DateTime)
    day: Mapped[date] = mapped_column(Date)
    offline: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(16), index=True)
    detail: Mapped[str] = mapped_column(Text, default="")


@dataclass(frozen=True)
class PendingLink:
    id: int
    uid: str
    sku: str
    member_id: str
    txn_ref: str


@dataclass(frozen=True)
class UsedCoupon:
    """A coupon as this terminal holds it (``sku`` None: accepted offline, for any item)."""

    code: str
    pos_id: str
    txn_id: str
    sku: str | None
    percent: int
    max_value: int | None
    offline: bool
    status: str


def record_link(engine: Engine, *, uid: str, sku: str, member_id: str, txn_ref: str,
                now: datetime) -> bool:
    """Keep a tag -> member link for central; False when this exact link is kept already."""
    with write(engine, "recording a product tag link") as conn:
        done = conn.execute(sqlite_insert(TagLink).values(
            uid=uid, sku=sku, member_id=member_id, txn_ref=txn_ref, linked_at=now,
            status="pending").on_conflict_do_nothing().returning(TagLink.id)).first()
    return done is not None


def pending_links(engine: Engine, limit: int = MAX_PUSH) -> list[PendingLink]:
    with read(engine, "reading product tag links") as conn:
        rows = conn.execute(select(TagLink.id, TagLink.uid, TagLink.sku, TagLink.member_id,
                                   TagLink.txn_ref).where(TagLink.status == "pending")
                            .order_by(TagLink.id).limit(limit)).all()
    return [PendingLink(*r) for r in rows]


def mark_links(engine: Engine, answers: list[tuple[int, str]]) -> None:
    """Central's answer per link id; none of them is sent again."""
    if not answers:
        return
    with write(engine, "recording central's answer on tag links") as conn:
        for link_id, status in answers:
            conn.execute(update(TagLink).where(TagLink.id == link_id).values(status=status))


def coupon(engine: Engine, code: str) -> UsedCoupon | None:
    with read(engine, "reading a coupon") as conn:
        row = conn.execute(select(*_COUPON_COLUMNS).where(TagCoupon.code == code)).first()
    return None if row is None else UsedCoupon(*row)


def sales_with_coupons(engine: Engine) -> set[tuple[str, str]]:
    """(pos_id, txn_id) of every sale that took a coupon here."""
    with read(engine, "reading the sales with coupons") as conn:
        rows = conn.execute(select(TagCoupon.pos_id, TagCoupon.txn_id).distinct()).all()
    return {(r[0], r[1]) for r in rows}


def coupons_of(engine: Engine, pos_id: str, txn_id: str) -> list[UsedCoupon]:
    """The coupons used in one sale, in the order they were presented."""
    with read(engine, "reading a sale's coupons") as conn:
        rows = conn.execute(select(*_COUPON_COLUMNS).where(
            TagCoupon.pos_id == pos_id, TagCoupon.txn_id == txn_id)
            .order_by(TagCoupon.accepted_at, TagCoupon.code)).all()
    return [UsedCoupon(*r) for r in rows]


_COUPON_COLUMNS = (TagCoupon.code, TagCoupon.pos_id, TagCoupon.txn_id, TagCoupon.sku,
                   TagCoupon.percent, TagCoupon.max_value, TagCoupon.offline,
                   TagCoupon.status)


def record_coupon(engine: Engine, used: UsedCoupon, now: datetime, day: date, *,
                  per_day: int | None = None) -> bool:
    """Keep a coupon used in a sale; False when the code was used here already. With
    ``per_day``, an offline coupon is kept only while fewer than that many were taken
    offline on ``day`` (counted in the same write, so two sales cannot both pass)."""
    with write(engine, "recording a coupon") as conn:
        if per_day is not None:
            taken = conn.execute(select(func.count()).select_from(TagCoupon).where(
                TagCoupon.offline.is_(True), TagCoupon.day == day)).scalar_one()
            if taken >= per_day:
                return False
        done = conn.execute(sqlite_insert(TagCoupon).values(
            code=used.code, pos_id=used.pos_id, txn_id=used.txn_id, sku=used.sku,
            percent=used.percent, max_value=used.max_value, accepted_at=now, day=day,
            offline=used.offline, status=used.status, detail="")
            .on_conflict_do_nothing().returning(TagCoupon.code)).first()
    return done is not None


def committed_offline_coupons(engine: Engine, limit: int = MAX_PUSH) -> list[UsedCoupon]:
    """Offline coupons whose sale was committed and that central has not answered yet (a
    sale voided or never committed used nothing: its coupon is not pushed)."""
    sold = exists().where(and_(Sale.pos_id == TagCoupon.pos_id,
                               Sale.txn_id == TagCoupon.txn_id))
    with read(engine, "reading offline coupons") as conn:
        rows = conn.execute(select(*_COUPON_COLUMNS).where(
            TagCoupon.status == "pending", sold).order_by(TagCoupon.accepted_at)
            .limit(limit)).all()
    return [UsedCoupon(*r) for r in rows]


def mark_coupon(engine: Engine, code: str, status: str, detail: str) -> None:
    with write(engine, "recording central's answer on a coupon") as conn:
        conn.execute(update(TagCoupon).where(TagCoupon.code == code)
                     .values(status=status, detail=detail[:2000]))


def earn_event_id(engine: Engine, member_id: str, txn_ref: str) -> str | None:
    """The id of a sale's earn event (what the receipt's visit link names), if it earned."""
    with read(engine, "reading a sale's earn event") as conn:
        got = conn.execute(select(LedgerEvent.event_id).where(
            LedgerEvent.member_id == member_id, LedgerEvent.txn_ref == txn_ref,
            LedgerEvent.kind == "earn")).scalar()
    return None if got is None else str(got)


def coupons_to_release(engine: Engine, limit: int = MAX_PUSH) -> list[UsedCoupon]:
    """Coupons central holds for a sale of ours that did not use them (to give back)."""
    with read(engine, "reading coupons to give back") as conn:
        rows = conn.execute(select(*_COUPON_COLUMNS).where(TagCoupon.status == "releasing")
                            .order_by(TagCoupon.accepted_at).limit(limit)).all()
    return [UsedCoupon(*r) for r in rows]


def forget_coupon(engine: Engine, code: str) -> None:
    """Drop a coupon a sale gave back, so that the code can be used in another sale."""
    with write(engine, "forgetting a coupon") as conn:
        conn.execute(delete(TagCoupon).where(TagCoupon.code == code))
