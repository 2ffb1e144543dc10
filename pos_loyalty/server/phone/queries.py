"""The phone pages' database work: record a tap (and the SUN counter), coupons, forms, figures.

A SUN tap is genuine only if its read counter is above the chain's last one for that tag:
the counter is raised with one conditional upsert of ``sun_counters`` (the table terminals
share), and "did it rise" decides genuine or replayed, so two phones racing with one URL
cannot both win. A genuine tap issues the tag's single coupon if it has none yet.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Connection, case, func, select, update

from pos_loyalty.ids import uuid7
from pos_loyalty.nfc.producturl import TagProof
from pos_loyalty.server.db import Database
from pos_loyalty.server.ledger.queries import CENTRAL_TERMINAL, apply_deltas
from pos_loyalty.store.central_models import (
    LedgerEvent,
    PhoneCoupon,
    PhoneNps,
    PhoneRegistration,
    PhoneTagLink,
    PhoneTap,
    SunCounter,
)

VISIT_S = 3600  # a visit's forms can be posted this long after the tap
_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud at a till


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_coupon_code() -> str:
    """10 characters from a 32-letter alphabet: 50 bits, not guessable at a till."""
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(10))


@dataclass(frozen=True)
class CouponView:
    code: str
    percent: int
    expires_at: datetime
    redeemed: bool


@dataclass(frozen=True)
class Visit:
    """One tap as its page shows it."""

    tap_id: str
    sku: str
    uid: str | None
    result: str  # genuine, signed, replayed, forged, unverified
    at: datetime
    coupon: CouponView | None = None
    registered: bool = False
    nps_score: int | None = None


def _coupon(conn: Connection, uid: str, now: datetime) -> CouponView | None:
    row = conn.execute(select(PhoneCoupon.code, PhoneCoupon.percent, PhoneCoupon.expires_at,
                              PhoneCoupon.redeemed_at).where(PhoneCoupon.uid == uid)).first()
    if row is None or row.expires_at <= now:
        return None
    return CouponView(row.code, row.percent, row.expires_at, row.redeemed_at is not None)


def _state(conn: Connection, uid: str | None) -> tuple[bool, int | None]:
    if uid is None:
        return False, None
    row = conn.execute(select(
        select(PhoneRegistration.uid).where(PhoneRegistration.uid == uid).exists(),
        select(PhoneNps.score).where(PhoneNps.uid == uid).scalar_subquery())).one()
    return bool(row[0]), row[1]


def raise_counter(db: Database, conn: Connection, uid: str, counter: int,
                  now: datetime) -> bool:
    """Raise the chain's SUN counter of ``uid`` to ``counter``; True if it rose (a fresh
    read), False if that counter or a later one was seen before (a replay)."""
    stmt = db.insert(SunCounter).values(
        uid=uid, counter=counter, terminal_id=CENTRAL_TERMINAL, updated_at=now,
        change_xid=db.stamp(conn))
    stmt = stmt.on_conflict_do_update(
        index_elements=[SunCounter.uid],
        set_={"counter": stmt.excluded.counter, "terminal_id": stmt.excluded.terminal_id,
              "updated_at": stmt.excluded.updated_at, "change_xid": stmt.excluded.change_xid},
        where=SunCounter.counter < stmt.excluded.counter)
    return conn.execute(stmt.returning(SunCounter.uid)).first() is not None


def _engage(db: Database, conn: Connection, uid: str, sku: str, points: int,
            now: datetime) -> None:
    """The points for engaging, once per tag, to the member the till linked it to."""
    event_id = str(uuid7())
    link = conn.execute(
        update(PhoneTagLink)
        .where(PhoneTagLink.uid == uid, PhoneTagLink.engaged_event_id.is_(None))
        .values(engaged_event_id=event_id)
        .returning(PhoneTagLink.member_id, PhoneTagLink.store_id)).first()
    if link is None:
        return  # not bought by a member, or engaged already
    conn.execute(db.insert(LedgerEvent).values(
        member_id=link.member_id, event_id=event_id, terminal_id=CENTRAL_TERMINAL,
        store_id=link.store_id, terminal_seq=0, kind="earn", points=points,
        txn_ref=f"engage {sku} {uid}"[:140], terminal_time=now, received_at=now,
        offline=False, flags="", status="applied", reason="", review_note=""))
    apply_deltas(db, conn, {link.member_id: points})


def record_tap(db: Database, sku: str, proof: TagProof, token: str | None, *,
               coupon_percent: int, coupon_days: int, engage_points: int = 0) -> Visit:
    """Record one page opening; a fresh SUN counter makes it genuine, issues the coupon and,
    on the tag's first genuine tap, gives its buyer ``engage_points``."""
    now = db.clock()

    def tx(conn: Connection) -> Visit:
        result: str = proof.proof
        if proof.proof == "sun":
            assert proof.uid is not None and proof.counter is not None
            fresh_counter = raise_counter(db, conn, proof.uid, proof.counter, now)
            result = "genuine" if fresh_counter else "replayed"
        gets_token = result in ("genuine", "signed") and token is not None
        tap_id = str(uuid.uuid4())
        sold_by = conn.execute(db.insert(PhoneTap).values(
            tap_id=tap_id, token_hash=token_hash(token) if gets_token and token else None,
            sku=sku, uid=proof.uid, result=result, counter=proof.counter,
            # the store that sold the item, when a till linked the tag (no extra round trip)
            store_id=(select(PhoneTagLink.store_id).where(PhoneTagLink.uid == proof.uid)
                      .scalar_subquery() if proof.uid is not None else None),
            at=now, day=now.date()).returning(PhoneTap.store_id)).scalar()
        coupon = None
        fresh = False
        if result == "genuine" and proof.uid is not None:
            made = conn.execute(db.insert(PhoneCoupon).values(
                code=new_coupon_code(), uid=proof.uid, sku=sku, percent=coupon_percent,
                issued_at=now, expires_at=now + timedelta(days=coupon_days),
                redeemed_at=None, redeemed_by=None, redeemed_txn=None,
            ).on_conflict_do_nothing(index_elements=[PhoneCoupon.uid]).returning(
                PhoneCoupon.code, PhoneCoupon.percent, PhoneCoupon.expires_at)).first()
            if made is not None:  # the tag's first genuine tap: nothing else known of it
                fresh = True
                coupon = CouponView(made.code, made.percent, made.expires_at, False)
                if engage_points > 0 and sold_by is not None:  # a till linked the tag
                    _engage(db, conn, proof.uid, sku, engage_points, now)
            else:
                coupon = _coupon(conn, proof.uid, now)
        registered, score = (False, None) if fresh or not gets_token else _state(conn, proof.uid)
        return Visit(tap_id, sku, proof.uid, result, now, coupon, registered, score)

    return db.write(tx)


def visit(db: Database, sku: str, token: str) -> Visit | None:
    """The visit a form token belongs to, if it is this product's and still open."""
    now = db.clock()
    with db.read() as conn:
        tap = conn.execute(select(
            PhoneTap.tap_id, PhoneTap.sku, PhoneTap.uid, PhoneTap.result, PhoneTap.at,
        ).where(PhoneTap.token_hash == token_hash(token))).first()
        if tap is None or tap.sku != sku or tap.at < now - timedelta(seconds=VISIT_S):
            return None
        coupon = _coupon(conn, tap.uid, now) if tap.result == "genuine" and tap.uid else None
        registered, score = _state(conn, tap.uid)
        return Visit(tap.tap_id, tap.sku, tap.uid, tap.result, tap.at, coupon, registered,
                     score)


def register_product(db: Database, v: Visit, name: str, email: str,
                     purchased_on: date | None) -> bool:
    """Register the visit's item; False if it was registered already (the first one stays)."""
    assert v.uid is not None

    def tx(conn: Connection) -> bool:
        done = conn.execute(db.insert(PhoneRegistration).values(
            uid=v.uid, sku=v.sku, name=name, email=email, purchased_on=purchased_on,
            tap_id=v.tap_id, created_at=db.clock(),
        ).on_conflict_do_nothing(index_elements=[PhoneRegistration.uid])
            .returning(PhoneRegistration.uid)).first()
        return done is not None

    return db.write(tx)


def answer_nps(db: Database, v: Visit, score: int, comment: str) -> None:
    """Keep the item's latest 0-10 answer (one per item: a phone cannot stuff the ballot)."""
    assert v.uid is not None

    def tx(conn: Connection) -> None:
        stmt = db.insert(PhoneNps).values(uid=v.uid, sku=v.sku, score=score, comment=comment,
                                          tap_id=v.tap_id, answered_at=db.clock())
        conn.execute(stmt.on_conflict_do_update(
            index_elements=[PhoneNps.uid],
            set_={"score": stmt.excluded.score, "comment": stmt.excluded.comment,
                  "tap_id": stmt.excluded.tap_id, "answered_at": stmt.excluded.answered_at}))

    db.write(tx)


# -- what the brand learns (for the owner's reports) ------------------------------------------


@dataclass(frozen=True)
class TapFigures:
    sku: str
    day: date
    store_id: str | None
    taps: int
    genuine: int  # first genuine taps of a SUN URL (the rest are replays or unverified)

    @property
    def first_tap_rate(self) -> float:
        return self.genuine / self.taps if self.taps else 0.0


@dataclass(frozen=True)
class ProductFigures:
    sku: str
    registrations: int
    nps_answers: int
    nps: int | None  # % promoters - % detractors, None without answers
    coupons_issued: int
    coupons_redeemed: int


def tap_figures(db: Database, since: date, until: date) -> list[TapFigures]:
    """Taps per product, day and store in ``[since, until]``, with how many were genuine."""
    genuine = func.sum(case((PhoneTap.result == "genuine", 1), else_=0))
    with db.read() as conn:
        rows = conn.execute(
            select(PhoneTap.sku, PhoneTap.day, PhoneTap.store_id, func.count(), genuine)
            .where(PhoneTap.day >= since, PhoneTap.day <= until)
            .group_by(PhoneTap.sku, PhoneTap.day, PhoneTap.store_id)
            .order_by(PhoneTap.sku, PhoneTap.day, PhoneTap.store_id)).all()
    return [TapFigures(r[0], r[1], r[2], int(r[3]), int(r[4] or 0)) for r in rows]


def product_figures(db: Database, skus: Sequence[str] | None = None) -> list[ProductFigures]:
    """Registrations, NPS and coupon figures per product (all products when ``skus`` is None)."""
    with db.read() as conn:
        regs = {r[0]: int(r[1]) for r in conn.execute(
            select(PhoneRegistration.sku, func.count()).group_by(PhoneRegistration.sku))}
        nps_rows = conn.execute(select(
            PhoneNps.sku, func.count(),
            func.sum(case((PhoneNps.score >= 9, 1), else_=0)),
            func.sum(case((PhoneNps.score <= 6, 1), else_=0))).group_by(PhoneNps.sku)).all()
        coupons = conn.execute(select(
            PhoneCoupon.sku, func.count(), func.count(PhoneCoupon.redeemed_at))
            .group_by(PhoneCoupon.sku)).all()
    nps = {r[0]: (int(r[1]), int(r[2] or 0), int(r[3] or 0)) for r in nps_rows}
    issued = {r[0]: (int(r[1]), int(r[2])) for r in coupons}
    names = sorted(set(regs) | set(nps) | set(issued)) if skus is None else list(skus)
    out = []
    for sku in names:
        n, promoters, detractors = nps.get(sku, (0, 0, 0))
        score = round(100 * (promoters - detractors) / n) if n else None
        c_issued, c_redeemed = issued.get(sku, (0, 0))
        out.append(ProductFigures(sku, int(regs.get(sku, 0)), n, score, c_issued, c_redeemed))
    return out
