"""Admin API for program versions (``/v1/admin/programs``)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.concurrency import run_in_threadpool

from pos_loyalty.server.deps import AdminDep, StoreDep
from pos_loyalty.server.schemas import TEXT_PATTERN, ErrorPublic, Id, TerminalTime

router = APIRouter(prefix="/v1/admin/programs", tags=["admin: programs"], responses={
    code: {"model": ErrorPublic} for code in (401, 403, 404, 409, 422)})


class ProgramCreate(BaseModel):
    """A program file's text, for the whole chain or some stores, from ``at`` (now)."""

    model_config = ConfigDict(extra="forbid")
    body: Annotated[str, StringConstraints(min_length=1, max_length=256 * 1024)]
    stores: Annotated[list[Id], Field(max_length=500)] = []
    at: TerminalTime | None = None
    note: Annotated[str, StringConstraints(max_length=200, pattern=TEXT_PATTERN)] = ""


class RollbackCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stores: Annotated[list[Id], Field(max_length=500)] | None = None


@router.get("")
async def versions(store: StoreDep, _admin: AdminDep) -> dict[str, Any]:
    rows = await run_in_threadpool(store.program_versions)
    return {"versions": [asdict(v) for v in rows]}


@router.post("", status_code=201)
async def publish(body: ProgramCreate, store: StoreDep, _admin: AdminDep) -> dict[str, Any]:
    """Validate and publish; a bad file is a 422 naming its line and key."""
    v = await run_in_threadpool(lambda: store.publish_program(
        body.body, stores=tuple(body.stores), at=body.at, note=body.note, source="body"))
    return asdict(v)


@router.get("/diff")
async def diff(store: StoreDep, _admin: AdminDep, old: Annotated[int, Query(ge=1)],
               new: Annotated[int, Query(ge=1)]) -> dict[str, Any]:
    return {"changes": await run_in_threadpool(store.diff_programs, old, new)}


@router.get("/{version}")
async def version(version: int, store: StoreDep, _admin: AdminDep) -> dict[str, Any]:
    return asdict(await run_in_threadpool(store.program_version, version))


@router.post("/{version}/rollback", status_code=201)
async def rollback(version: int, body: RollbackCreate, store: StoreDep,
                   _admin: AdminDep) -> dict[str, Any]:
    stores = tuple(body.stores) if body.stores is not None else None
    return asdict(await run_in_threadpool(lambda: store.rollback_program(version,
                                                                         stores=stores)))
