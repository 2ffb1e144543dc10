"""Admin API for members and cards (``/v1/admin/...``, see :func:`deps.require_admin`)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.concurrency import run_in_threadpool

from pos_loyalty.server.deps import AdminDep, StoreDep
from pos_loyalty.server.schemas import TEXT_PATTERN, ErrorPublic, Id

router = APIRouter(prefix="/v1/admin", tags=["admin: members"], responses={
    code: {"model": ErrorPublic} for code in (401, 403, 404, 409, 422)})

Text200 = Annotated[str, StringConstraints(max_length=200, pattern=TEXT_PATTERN)]


class MemberCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    member_id: Id
    display_name: Text200 = ""
    email: Text200 = ""
    tier: Annotated[str, StringConstraints(max_length=40, pattern=TEXT_PATTERN)] | None = None
    birthday: date | None = None
    card_id: Id | None = None
    uid: Annotated[str, StringConstraints(max_length=20, pattern=r"^[0-9A-Fa-f]*$")] | None = None


class MemberUpdate(BaseModel):
    """Only the fields sent change (``tier: null`` clears the tier)."""

    model_config = ConfigDict(extra="forbid")
    display_name: Text200 | None = None
    email: Text200 | None = None
    tier: Annotated[str, StringConstraints(max_length=40, pattern=TEXT_PATTERN)] | None = None
    birthday: date | None = None
    consent: bool | None = None


class PointsCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    points: Annotated[int, Field(ge=-10**9, le=10**9)]
    reason: Annotated[str, StringConstraints(min_length=1, max_length=140,
                                             pattern=TEXT_PATTERN)]


class MergeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    into: Id


class BlockCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    replace_with: Id | None = None
    uid: Annotated[str, StringConstraints(max_length=20, pattern=r"^[0-9A-Fa-f]*$")] | None = None


@router.get("/members")
async def members(store: StoreDep, _admin: AdminDep,
                  q: Annotated[str, Query(max_length=100)] = "",
                  after: Annotated[str, Query(max_length=64)] = "",
                  limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> dict[str, Any]:
    """Search by the start of a member id, card id or name (``q``), or list in id order."""
    if q:
        rows = await run_in_threadpool(store.search_members, q, limit=min(limit, 200))
    else:
        rows = await run_in_threadpool(store.list_members, after=after, limit=limit)
    return {"members": [asdict(r) for r in rows]}


@router.get("/members/{member_id}")
async def member(member_id: str, store: StoreDep, _admin: AdminDep) -> dict[str, Any]:
    return asdict(await run_in_threadpool(store.get_member, member_id))


@router.post("/members", status_code=201)
async def member_create(body: MemberCreate, store: StoreDep,
                        _admin: AdminDep) -> dict[str, Any]:
    await run_in_threadpool(lambda: store.add_member(
        body.member_id, body.display_name, card_id=body.card_id, uid=body.uid, tier=body.tier,
        birthday=body.birthday, email=body.email))
    return asdict(await run_in_threadpool(store.get_member, body.member_id))


@router.patch("/members/{member_id}")
async def member_update(member_id: str, body: MemberUpdate, store: StoreDep,
                        _admin: AdminDep) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    return asdict(await run_in_threadpool(lambda: store.update_member(
        member_id, **changes)))


@router.post("/members/{member_id}/points", status_code=201)
async def points(member_id: str, body: PointsCreate, store: StoreDep,
                 admin: AdminDep) -> dict[str, Any]:
    """An audited adjustment (reason and caller kept on the ledger row)."""
    event_id = await run_in_threadpool(lambda: store.adjust_points(
        member_id, body.points, body.reason, actor=admin, allow_negative=False))
    return {"event_id": event_id, "balance": await run_in_threadpool(store.balance, member_id)}


@router.post("/members/{member_id}/merge")
async def merge(member_id: str, body: MergeCreate, store: StoreDep,
                admin: AdminDep) -> dict[str, Any]:
    moved = await run_in_threadpool(lambda: store.merge_members(member_id, body.into,
                                                                actor=admin))
    return {"moved_points": moved, "into": body.into}


@router.post("/cards/{card_id}/block")
async def block(card_id: str, body: BlockCreate, store: StoreDep,
                _admin: AdminDep) -> dict[str, Any]:
    """Block a lost card; with ``replace_with`` its member gets that card (same balance)."""
    if body.replace_with:
        new = body.replace_with
        member_id = await run_in_threadpool(lambda: store.replace_card(card_id, new,
                                                                       uid=body.uid))
        return {"blocked": card_id, "issued": new, "member_id": member_id}
    from pos_loyalty.server.members.queries import MemberError

    if not await run_in_threadpool(store.set_card_status, card_id, "blocked"):
        raise MemberError(f"no card {card_id}", status=404)
    return {"blocked": card_id}
