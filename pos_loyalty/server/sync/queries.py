"""Delta pull: pages of one entity changed after a cursor and stamped below a horizon."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, tuple_

from pos_loyalty.server.db import MAX_INT64, Database
from pos_loyalty.server.terminals.queries import TerminalAuth
from pos_loyalty.store.central_models import (
    Balance,
    Card,
    CashierLine,
    IssuedOffer,
    Member,
    Program,
    SunCounter,
    Tier,
)
from pos_loyalty.store.entities import PULL_ENTITIES, PullEntity


@dataclass(frozen=True)
class EntitySpec:
    """How central reads one pulled entity: its table and which rows a terminal may see."""

    entity: PullEntity
    model: Any
    scope: Callable[[TerminalAuth], ColumnElement[bool]] | None = None


def _store_programs(auth: TerminalAuth) -> ColumnElement[bool]:
    """A terminal sees the chain-wide programs and its own store's."""
    return or_(Program.store_id.is_(None), Program.store_id == auth.store_id)


_MODELS: dict[str, tuple[Any, Callable[[TerminalAuth], ColumnElement[bool]] | None]] = {
    "members": (Member, None),
    "cards": (Card, None),
    "balances": (Balance, None),
    "tiers": (Tier, None),
    "programs": (Program, _store_programs),
    "sun_counters": (SunCounter, None),
    "offers": (IssuedOffer, None),
    "cashier_lines": (CashierLine, None),
}

ENTITIES: dict[str, EntitySpec] = {
    e.name: EntitySpec(e, *_MODELS[e.name]) for e in PULL_ENTITIES}


@dataclass(frozen=True)
class PullPage:
    entity: str
    columns: tuple[str, ...]
    rows: list[list[Any]]
    after: str  # cursor "xid:key" of the last row sent ("" if none yet)
    more: bool
    until: int


BIRTHDAY_YEAR = 2000  # a leap year, so 29 February survives


def _wire(column: str, value: Any) -> Any:
    """A pulled value as terminals get it. A birthday goes out as month and day only: the
    year is replaced by 2000 (terminals need the day for birthday offers, not the age)."""
    if column == "birthday" and isinstance(value, date):
        return value.replace(year=BIRTHDAY_YEAR).isoformat()
    return value.isoformat() if isinstance(value, date) else value


def parse_cursor(after: str) -> tuple[int, str] | None:
    """``"xid:key"`` -> (xid, key); ``""`` -> None. ValueError on anything else."""
    if after == "":
        return None
    xid_s, sep, key = after.partition(":")
    if not sep or not xid_s.isdigit() or len(xid_s) > 19:
        raise ValueError("cursor must look like '<xid>:<key>'")
    if int(xid_s) > MAX_INT64:
        raise ValueError(f"cursor xid must be at most {MAX_INT64}")
    return int(xid_s), key


def pull(db: Database, auth: TerminalAuth, entity: str, after: str, until: int,
         limit: int) -> PullPage:
    """Rows of ``entity`` changed after cursor ``after`` and stamped below ``until``."""
    spec = ENTITIES[entity]
    wire = spec.entity
    cursor = parse_cursor(after)
    until = min(until, db.horizon())
    model = spec.model
    key_col = getattr(model, wire.key)
    cols = [getattr(model, c) for c in wire.columns]
    stmt = select(model.change_xid, *cols).where(model.change_xid < until)
    if cursor is not None:
        stmt = stmt.where(tuple_(model.change_xid, key_col) > tuple_(*cursor))
    if spec.scope is not None:
        stmt = stmt.where(spec.scope(auth))
    stmt = stmt.order_by(model.change_xid, key_col).limit(limit + 1)
    with db.read() as conn:
        raw = conn.execute(stmt).all()
    more = len(raw) > limit
    raw = raw[:limit]
    key_index = wire.columns.index(wire.key) + 1
    rows = [[_wire(c, v) for c, v in zip(wire.columns, r[1:], strict=True)] for r in raw]
    last = f"{raw[-1][0]}:{raw[-1][key_index]}" if raw else after
    return PullPage(entity, wire.columns, rows, last, more, until)


def counts(db: Database, until: int) -> dict[str, int]:
    """How many rows of each entity lie below ``until`` (a bootstrap's progress total)."""
    out: dict[str, int] = {}
    with db.read() as conn:
        for name, spec in ENTITIES.items():
            out[name] = int(conn.execute(select(func.count()).select_from(spec.model)
                                         .where(spec.model.change_xid < until)).scalar_one())
    return out
