"""The till's side of product tags, for terminals: link a tag to the sale's member, redeem a
tag's coupon exactly once across the chain.

``POST /v1/phone/links``: a product tag tapped during a member's sale (terminal credential).
The first link of a tag wins; the same link again is acknowledged; another member for the
same tag is reported as a conflict and changes nothing. The linked member then gets the
points for engaging on the tag's first genuine phone tap (see ``queries.record_tap``).

``POST /v1/phone/coupons/redeem``: one conditional update marks a coupon used, so of two
tills racing with one code exactly one wins; the same (terminal, transaction) asking again
gets the same answer (a retried request), anyone else a 409 with the reason. A sale that
took a coupon and did not use it (voided) gives it back with ``/v1/phone/coupons/release``.
A till that names its basket's products (``skus``) has a coupon for another product refused (409)
without using it. A coupon a terminal accepted while central was unreachable arrives later
with ``offline``: it is redeemed if it still can be, else central cannot refuse what the
sale already gave, so it answers ``conflict`` and keeps a review item for store IT (kind
``coupon``, one per code and sale however often the push is repeated).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import Connection, select, update
from starlette.concurrency import run_in_threadpool

from pos_loyalty.server.db import Database
from pos_loyalty.server.deps import StoreDep, TerminalDep
from pos_loyalty.server.schemas import ErrorPublic
from pos_loyalty.server.terminals.queries import TerminalAuth
from pos_loyalty.store.central_models import Member, PhoneCoupon, PhoneTagLink, ReviewItem

router = APIRouter(tags=["phone"])
MAX_LINKS = 100
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorPublic} for code in (401, 403, 404, 409, 413, 422)}
Uid = Annotated[str, StringConstraints(pattern=r"^[0-9A-F]{8,20}$")]
TxnRef = Annotated[str, StringConstraints(min_length=1, max_length=140)]
CouponCode = Annotated[str, StringConstraints(pattern=r"^[2-9A-Z]{10}$")]
CouponTxnRef = Annotated[str, StringConstraints(min_length=1, max_length=64)]
"""A coupon's sale: what ``phone_coupons.redeemed_txn`` holds."""


@dataclass(frozen=True)
class LinkIn:
    uid: str
    sku: str
    member_id: str
    txn_ref: str


LinkResult = Literal["linked", "known", "conflict", "unknown_member"]


def link_tags(db: Database, auth: TerminalAuth, links: list[LinkIn]) -> list[LinkResult]:
    """Record each tag's buyer (first link wins); one result per link, in order."""
    now = db.clock()

    def tx(conn: Connection) -> list[LinkResult]:
        out: list[LinkResult] = []
        for link in links:
            if conn.execute(select(Member.member_id).where(
                    Member.member_id == link.member_id)).first() is None:
                out.append("unknown_member")
                continue
            made = conn.execute(db.insert(PhoneTagLink).values(
                uid=link.uid, sku=link.sku, member_id=link.member_id, terminal_id=auth.terminal_id,
                store_id=auth.store_id, txn_ref=link.txn_ref, linked_at=now,
                engaged_event_id=None,
            ).on_conflict_do_nothing(index_elements=[PhoneTagLink.uid])
                .returning(PhoneTagLink.uid)).first()
            if made is not None:
                out.append("linked")
                continue
            owner = conn.execute(select(PhoneTagLink.member_id)
                                 .where(PhoneTagLink.uid == link.uid)).scalar()
            out.append("known" if owner == link.member_id else "conflict")
        return out

    return db.write(tx)


RedeemResult = Literal["redeemed", "already_redeemed", "unknown", "expired", "other_product"]
REASONS: dict[str, str] = {"unknown": "no such coupon", "expired": "coupon expired",
                           "already_redeemed": "coupon already used"}


@dataclass(frozen=True)
class Redemption:
    result: RedeemResult
    percent: int = 0
    sku: str = ""
    review: bool = False  # an offline use central could not honour: kept for review


def redeem_coupon(db: Database, auth: TerminalAuth, code: str, txn_ref: str, *,
                  skus: frozenset[str] | None = None, offline: bool = False) -> Redemption:
    """Use the coupon ``code`` for this terminal's transaction, exactly once chain-wide.

    ``skus``: the products of the sale; a coupon for none of them is not used. ``offline``:
    the sale already gave the discount; a use central cannot honour becomes a review item.
    """
    now = db.clock()

    def tx(conn: Connection) -> Redemption:
        cond = [PhoneCoupon.code == code, PhoneCoupon.redeemed_at.is_(None),
                PhoneCoupon.expires_at > now]
        if skus is not None:
            cond.append(PhoneCoupon.sku.in_(sorted(skus)))
        won = conn.execute(
            update(PhoneCoupon).where(*cond)
            .values(redeemed_at=now, redeemed_by=auth.terminal_id, redeemed_txn=txn_ref)
            .returning(PhoneCoupon.percent, PhoneCoupon.sku)).first()
        if won is not None:
            return Redemption("redeemed", int(won.percent), won.sku)
        row = conn.execute(select(PhoneCoupon.percent, PhoneCoupon.sku,
                                  PhoneCoupon.redeemed_by, PhoneCoupon.redeemed_txn,
                                  PhoneCoupon.redeemed_at, PhoneCoupon.expires_at)
                           .where(PhoneCoupon.code == code)).first()
        got: Redemption
        if row is None:
            got = Redemption("unknown")
        elif row.redeemed_at is not None:
            if (row.redeemed_by, row.redeemed_txn) == (auth.terminal_id, txn_ref):
                return Redemption("redeemed", int(row.percent), row.sku)  # a retried request
            got = Redemption("already_redeemed", int(row.percent), row.sku)
        elif row.expires_at <= now:
            got = Redemption("expired", int(row.percent), row.sku)
        else:
            return Redemption("other_product", int(row.percent), row.sku)
        if offline:
            detail = {"code": code, "txn_ref": txn_ref, "reason": REASONS[got.result],
                      "sku": got.sku or None,
                      "first_use": {"terminal_id": row.redeemed_by, "txn_ref": row.redeemed_txn}
                      if row is not None and row.redeemed_at is not None else None}
            conn.execute(db.insert(ReviewItem).values(
                item_id=str(uuid.uuid5(uuid.NAMESPACE_URL,
                                       f"coupon:{code}:{auth.terminal_id}:{txn_ref}")),
                kind="coupon", terminal_id=auth.terminal_id, store_id=auth.store_id,
                event_id=code, detail=json.dumps(detail, sort_keys=True), created_at=now,
                resolved=False).on_conflict_do_nothing(index_elements=[ReviewItem.item_id]))
            return Redemption(got.result, got.percent, got.sku, review=True)
        return got

    return db.write(tx)


def release_coupon(db: Database, auth: TerminalAuth, code: str, txn_ref: str) -> bool:
    """Give back a coupon this terminal's sale took and did not use (voided, or its product
    taken off the basket): it can be used again. False when that sale does not hold it
    (never taken, released already, or another's): nothing changes."""

    def tx(conn: Connection) -> bool:
        done = conn.execute(update(PhoneCoupon).where(
            PhoneCoupon.code == code, PhoneCoupon.redeemed_by == auth.terminal_id,
            PhoneCoupon.redeemed_txn == txn_ref).values(
            redeemed_at=None, redeemed_by=None, redeemed_txn=None)).rowcount
        return bool(done)

    return db.write(tx)


class LinkCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    uid: Uid
    sku: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,32}$")]
    member_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    txn_ref: TxnRef


class LinksCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    links: Annotated[list[LinkCreate], Field(max_length=MAX_LINKS)]


class LinksPublic(BaseModel):
    results: list[LinkResult]


Sku = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,64}$")]


class RedeemCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    code: CouponCode
    txn_ref: CouponTxnRef
    skus: Annotated[list[Sku], Field(max_length=200)] | None = None
    offline: bool = False


class ReleaseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    code: CouponCode
    txn_ref: CouponTxnRef


class ReleasePublic(BaseModel):
    status: Literal["released", "not_held"]


class RedeemPublic(BaseModel):
    status: Literal["redeemed", "conflict"]
    percent: int
    sku: str
    reason: str | None = None  # a conflict's


@router.post("/v1/phone/links", response_model=LinksPublic, responses=_ERRORS)
async def push_links(body: LinksCreate, auth: TerminalDep, store: StoreDep) -> LinksPublic:
    """Product tags tapped during members' sales: each tag's buyer, first link wins."""
    items = [LinkIn(x.uid, x.sku, x.member_id, x.txn_ref) for x in body.links]
    return LinksPublic(results=await run_in_threadpool(link_tags, store, auth, items))


@router.post("/v1/phone/coupons/redeem", response_model=RedeemPublic, responses=_ERRORS,
             response_model_exclude_none=True)
async def redeem(body: RedeemCreate, auth: TerminalDep, store: StoreDep) -> Any:
    """Use a tag's reorder coupon in this terminal's transaction (once, chain-wide)."""
    skus = frozenset(body.skus) if body.skus is not None else None
    done = await run_in_threadpool(partial(redeem_coupon, store, auth, body.code, body.txn_ref,
                                           skus=skus, offline=body.offline))
    if done.result == "redeemed":
        return RedeemPublic(status="redeemed", percent=done.percent, sku=done.sku)
    if done.review:  # an offline use: answered, kept for store IT
        return RedeemPublic(status="conflict", percent=done.percent, sku=done.sku,
                            reason=REASONS[done.result])
    if done.result == "other_product":
        reason = f"coupon for product {done.sku}, which is not in this sale"
    else:
        reason = REASONS[done.result]
    status = 404 if done.result == "unknown" else 409
    title = "not found" if status == 404 else "conflict"
    return JSONResponse({"error": title, "reason": reason}, status_code=status)


@router.post("/v1/phone/coupons/release", response_model=ReleasePublic, responses=_ERRORS)
async def release(body: ReleaseCreate, auth: TerminalDep, store: StoreDep) -> ReleasePublic:
    """A coupon this terminal's sale took but did not use is free again (idempotent)."""
    done = await run_in_threadpool(release_coupon, store, auth, body.code, body.txn_ref)
    return ReleasePublic(status="released" if done else "not_held")
