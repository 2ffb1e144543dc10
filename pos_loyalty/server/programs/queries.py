"""Loyalty programs: versions published at central, scheduled per store, rolled back.

Every publication is a new row of ``program_versions`` (never edited), for some stores or
the whole chain, from a start time. Terminals pull the ``programs`` table: one row per
store (``store:<id>``) or for the chain (``chain``), holding the newest version started
for it. :func:`activate_due` writes those rows once a version's start time has come; the
server calls it before every pull horizon, so a scheduled version reaches terminals on
their first sync after its start.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select, update

from pos_loyalty.rules import (
    DEFAULT_PROGRAM,
    Difference,
    Program,
    ReplayReport,
    compare,
    parse_program,
    parse_sales,
    replay,
)
from pos_loyalty.rules.kinds.base import Conditions, Rule
from pos_loyalty.rules.replay import SalesFormat
from pos_loyalty.server.db import Database, Refused
from pos_loyalty.store.central_models import Program as ProgramRow
from pos_loyalty.store.central_models import ProgramVersion

CHAIN = "chain"
_VERSIONS = ProgramVersion.__table__


class ProgramError(Refused):
    """A program store IT asked to publish, show or roll back that cannot be."""


@dataclass(frozen=True)
class VersionRow:
    version: int
    name: str
    stores: tuple[str, ...]  # () = the whole chain
    starts_at: datetime
    published_at: datetime
    live: bool
    note: str
    copied_from: int | None
    body: str = ""


def validate(text: str, source: str = "<program>") -> Program:
    """The program a file describes; RulesError naming file, line and key otherwise."""
    return parse_program(text, path=source)


def _row(r: Any, body: bool = False) -> VersionRow:
    stores = tuple(s for s in r.stores.split(",") if s)
    return VersionRow(r.version, r.name, stores, r.starts_at, r.published_at, bool(r.live),
                      r.note, r.copied_from, r.body if body else "")


def publish(db: Database, text: str, *, stores: tuple[str, ...] = (),
            at: datetime | None = None, note: str = "", source: str = "<program>",
            copied_from: int | None = None) -> VersionRow:
    """Store a new version (after validating it) for ``stores`` (none = chain-wide) from
    ``at`` (default now); it goes live at once when ``at`` is not in the future."""
    program = validate(text, source)
    for s in stores:
        if not s or "," in s or len(s) > 64:
            raise ProgramError(f"bad store id {s!r}", status=422)
    now = db.clock()
    starts = at or now

    def tx(conn: Connection) -> int:
        version = int(conn.execute(select(func.coalesce(func.max(ProgramVersion.version), 0))
                                   ).scalar_one()) + 1
        conn.execute(db.insert(ProgramVersion).values(
            version=version, name=program.name, body=text, stores=",".join(sorted(stores)),
            starts_at=starts, published_at=now, note=note[:200], copied_from=copied_from,
            live=False))
        return version

    version = db.write(tx)
    activate_due(db)
    return get_version(db, version)


def activate_due(db: Database) -> int:
    """Make every version whose start time has come the pulled program of its stores (in
    version order, so the newest wins). Returns how many went live."""
    now = db.clock()
    with db.read() as conn:
        due = conn.execute(select(ProgramVersion.version).where(
            ProgramVersion.live.is_(False), ProgramVersion.starts_at <= now)).first()
    if due is None:
        return 0

    def tx(conn: Connection) -> int:
        rows = conn.execute(select(_VERSIONS).where(
            ProgramVersion.live.is_(False), ProgramVersion.starts_at <= now)
            .order_by(ProgramVersion.version).with_for_update()).all()
        stamp = db.stamp(conn)
        for v in rows:
            targets: list[str | None] = [s for s in v.stores.split(",") if s]
            values = {"name": v.name, "body": v.body, "version": v.version,
                      "change_xid": stamp}
            if not targets:
                # chain-wide: every store's own row follows too (rows are never deleted,
                # terminals would not learn of a deletion)
                conn.execute(update(ProgramRow).where(ProgramRow.store_id.is_not(None))
                             .values(values))
            for store in targets or [None]:
                pid = f"store:{store}" if store else CHAIN
                conn.execute(db.insert(ProgramRow).values(
                    program_id=pid, store_id=store, **values,
                ).on_conflict_do_update(index_elements=[ProgramRow.program_id], set_=values))
            conn.execute(update(ProgramVersion).where(ProgramVersion.version == v.version)
                         .values(live=True))
        return len(rows)

    return db.write(tx)


def list_versions(db: Database) -> list[VersionRow]:
    with db.read() as conn:
        rows = conn.execute(select(_VERSIONS).order_by(ProgramVersion.version)).all()
        return [_row(r) for r in rows]


def get_version(db: Database, version: int) -> VersionRow:
    with db.read() as conn:
        r = conn.execute(select(_VERSIONS).where(
            ProgramVersion.version == version)).first()
        if r is None:
            raise ProgramError(f"no program version {version}", status=404)
        return _row(r, body=True)


def live_for(db: Database, store_id: str | None) -> VersionRow | None:
    """The version a store's terminals run now (its own, else the chain's)."""
    with db.read() as conn:
        row = None
        if store_id is not None:
            row = conn.execute(select(ProgramRow.version).where(
                ProgramRow.program_id == f"store:{store_id}")).scalar()
        if row is None:
            row = conn.execute(select(ProgramRow.version).where(
                ProgramRow.program_id == CHAIN)).scalar()
    return None if row is None else get_version(db, int(row))


def rules_of(row: VersionRow | None) -> Program:
    """The rules a live version carries; the built-in program when none is live."""
    return validate(row.body, f"version {row.version}") if row else DEFAULT_PROGRAM


def rollback(db: Database, version: int, *, stores: tuple[str, ...] | None = None,
             note: str = "") -> VersionRow:
    """Publish version ``version``'s body again, now, as a new version (history is never
    rewritten); to the stores it first went to unless ``stores`` is given."""
    old = get_version(db, version)
    return publish(db, old.body, stores=old.stores if stores is None else stores,
                   note=note or f"rollback to version {version}", copied_from=version,
                   source=f"version {version}")


# -- diff in words ------------------------------------------------------------------------

def _money(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


def _rule_words(rule: Rule) -> str:
    """One short line naming what a rule gives."""
    kind = getattr(rule, "KIND", type(rule).__name__.lower())
    label = rule.label or rule.id
    if kind == "earn":
        parts = []
        if getattr(rule, "points", 0):
            parts.append(f"{rule.points} pts per {_money(rule.per)}")  # type: ignore[attr-defined]
        if getattr(rule, "per_item", 0):
            parts.append(f"{rule.per_item} pts per item")  # type: ignore[attr-defined]
        if getattr(rule, "per_visit", 0):
            parts.append(f"{rule.per_visit} pts per visit")  # type: ignore[attr-defined]
        return f"{label}: earn {', '.join(parts) or 'nothing'}{_who(rule.when)}"
    return f"{label} ({kind}){_who(rule.when)}"


def _who(when: Conditions) -> str:
    parts = []
    if when.tiers:
        parts.append("for " + ", ".join(sorted(t.title() for t in when.tiers)))
    if when.categories:
        parts.append("on " + ", ".join(sorted(when.categories)))
    if when.valid_from or when.valid_until:
        parts.append(f"from {when.valid_from or 'any day'} to {when.valid_until or 'any day'}")
    return (" " + " ".join(parts)) if parts else ""


def _value(v: Any) -> str:
    if isinstance(v, frozenset | set):
        return ", ".join(sorted(str(x) for x in v)) or "none"
    if isinstance(v, tuple):
        return ", ".join(_value(x) for x in v) or "none"
    return str(v)


def _field_words(rule: Rule, name: str, old: Any, new: Any) -> str:
    """One changed setting of a rule as an owner reads it."""
    who = _who(rule.when)
    if name in ("points", "per") and getattr(rule, "KIND", "") == "earn":
        return ""  # said once as the earn rate below
    if name == "when":
        out = []
        for f in dataclasses.fields(Conditions):
            a, b = getattr(old, f.name), getattr(new, f.name)
            if a != b:
                out.append(f"{rule.label or rule.id}: {f.name.replace('_', ' ')} "
                           f"{_value(a)} -> {_value(b)}")
        return "; ".join(out)
    return f"{rule.label or rule.id}: {name.replace('_', ' ')} {_value(old)} -> " \
           f"{_value(new)}{who}"


def diff(old: Program, new: Program) -> list[str]:
    """What changes from ``old`` to ``new``, one sentence per change, rules by id."""
    out: list[str] = []
    if old.name != new.name:
        out.append(f"name {old.name!r} -> {new.name!r}")
    before = {r.id: r for r in old.active_rules}
    after = {r.id: r for r in new.active_rules}
    for rid, r in after.items():
        o = before.get(rid)
        if o is None:
            out.append(f"new rule {_rule_words(r)}")
            continue
        if type(o) is not type(r):
            out.append(f"rule {rid} changed from {_rule_words(o)} to {_rule_words(r)}")
            continue
        if getattr(r, "KIND", "") == "earn" and (o.points, o.per) != (  # type: ignore[attr-defined]
                r.points, r.per):  # type: ignore[attr-defined]
            out.append(f"earn rate {o.points} -> {r.points} pts per "  # type: ignore[attr-defined]
                       f"{_money(r.per)}{_who(r.when)}")  # type: ignore[attr-defined]
        for f in dataclasses.fields(r):
            if f.name in ("program",):
                continue
            a, b = getattr(o, f.name), getattr(r, f.name)
            if a != b and (words := _field_words(r, f.name, a, b)):
                out.append(words)
    for rid, o in before.items():
        if rid not in after:
            out.append(f"removed rule {_rule_words(o)}")
    for name in ("redemption", "expiry", "stacking", "tax", "returns", "timezone",
                 "currency"):
        a, b = getattr(old, name), getattr(new, name)
        if a != b:
            out.append(f"{name} {_value(a)} -> {_value(b)}")
    return out


def diff_versions(db: Database, a: int, b: int) -> list[str]:
    return diff(validate(get_version(db, a).body, f"version {a}"),
                validate(get_version(db, b).body, f"version {b}"))



# -- dry run ------------------------------------------------------------------------------

@dataclass(frozen=True)
class DryRun:
    """A candidate's effect on past sales beside the live program's, rule by rule."""

    candidate: ReplayReport
    live: ReplayReport
    live_version: int | None
    rows: tuple[Difference, ...]


def dry_run(db: Database, text: str, sales: Iterable[str] | None, fmt: SalesFormat = "csv",
            *, days: int | None = None, store_id: str | None = None,
            source: str = "<program>", sales_source: str = "sales") -> DryRun:
    """Replay past sales (the last ``days`` days of them, by central's clock) under the
    candidate and under the version live for ``store_id`` (the built-in program if none).

    ``sales`` None: the baskets central holds (the sales terminals pushed, net of refunds,
    of ``store_id`` only when given), which needs ``days``.
    """
    candidate = validate(text, source)
    live_row = live_for(db, store_id)
    live = rules_of(live_row)
    if sales is None:
        if days is None:
            raise Refused("a dry run over central's sales needs a number of days", status=422)
        from pos_loyalty.server.sales.queries import central_baskets

        past = list(central_baskets(db, days=days, stores=(store_id,) if store_id else ()))
        new, old = replay(past, candidate), replay(past, live)
        return DryRun(new, old, live_row.version if live_row else None, compare(new, old))
    past = list(parse_sales(sales, fmt, candidate, source=sales_source))
    if days is not None:
        since = db.clock() - timedelta(days=days)
        past = [s for s in past if (s.when.astimezone(UTC).replace(tzinfo=None)
                                    if s.when.tzinfo else s.when) >= since]
    new, old = replay(past, candidate), replay(past, live)
    return DryRun(new, old, live_row.version if live_row else None, compare(new, old))
