"""Every member's journey stage and RFM segment, computed from central's sales.

Two passes over the ``sales`` table, each one indexed aggregate: the distinct visit days of
every member (streamed in member order, so a chain's members never sit in memory at once
with their days) and every member's net spend in the period. The rules themselves are the
pure :mod:`pos_loyalty.insight.segments`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, cast, func, select

from pos_loyalty.insight.segments import (
    DEFAULT_RULES,
    Rfm,
    Stage,
    StageRules,
    lapsed_regular,
    rfm,
    stage,
    stage_at_last_visit,
)
from pos_loyalty.server.db import Database
from pos_loyalty.store.central_models import SaleRecord

REVENUE_KINDS = ("sale", "refund")


@dataclass(frozen=True)
class MemberInsight:
    """One member as the owner's reports see them on a given day."""

    member_id: str
    visits: int            # days with a sale, ever (up to the day)
    first_visit: date
    last_visit: date
    stage: Stage
    stage_before: Stage    # the stage at the last visit (what a lapse interrupted)
    lapsed_regular: bool
    rfm: Rfm


def day_of(db: Database, column: Any) -> Any:
    """The calendar day of a timestamp column, in SQL (SQLite returns it as text)."""
    return cast(column, Date) if db.is_pg else func.date(column)


def as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def visit_days(db: Database, *, until: date, stores: Sequence[str] = ()
               ) -> Iterator[tuple[str, list[date]]]:
    """(member, sorted visit days up to ``until``) for every member with a sale, in member
    order, streamed."""
    s = SaleRecord
    day = day_of(db, s.terminal_time)
    stmt = (select(s.member_id, day).where(
        s.kind == "sale", s.member_id.is_not(None),
        s.terminal_time < datetime.combine(until + timedelta(days=1), datetime.min.time()))
        .group_by(s.member_id, day).order_by(s.member_id, day))
    if stores:
        stmt = stmt.where(s.store_id.in_(list(stores)))
    with db.read() as conn:
        rows = conn.execution_options(stream_results=True, yield_per=10_000).execute(stmt)
        current: str | None = None
        days: list[date] = []
        for member_id, d in rows:
            if member_id != current:
                if current is not None:
                    yield current, days
                current, days = member_id, []
            days.append(as_date(d))
        if current is not None:
            yield current, days


def period_spend(db: Database, *, since: date, until: date,
                 stores: Sequence[str] = ()) -> dict[str, int]:
    """Each member's net spend (paid, less refunds) on the days ``since``..``until``."""
    s = SaleRecord
    stmt = (select(s.member_id, func.sum(s.paid_total)).where(
        s.kind.in_(REVENUE_KINDS), s.member_id.is_not(None),
        s.terminal_time >= datetime.combine(since, datetime.min.time()),
        s.terminal_time < datetime.combine(until + timedelta(days=1), datetime.min.time()))
        .group_by(s.member_id))
    if stores:
        stmt = stmt.where(s.store_id.in_(list(stores)))
    with db.read() as conn:
        return {str(m): int(v or 0) for m, v in conn.execute(stmt)}


def member_insight(db: Database, *, today: date, rules: StageRules = DEFAULT_RULES,
                   lapsed_after_days: int | None = None, period_days: int = 365,
                   stores: Sequence[str] = ()) -> Iterator[MemberInsight]:
    """Stage, lapsed-regular flag and RFM of every member with a sale, on ``today``.

    ``lapsed_after_days`` defaults to the rules' ``lapse_days``.
    """
    after = rules.lapse_days if lapsed_after_days is None else lapsed_after_days
    spend = period_spend(db, since=today - timedelta(days=period_days - 1), until=today,
                         stores=stores)
    for member_id, days in visit_days(db, until=today, stores=stores):
        scored = rfm(days, spend.get(member_id, 0), today, period_days)
        assert scored is not None  # every member here has a visit
        yield MemberInsight(member_id, len(days), days[0], days[-1],
                            stage(days, today, rules), stage_at_last_visit(days, rules),
                            lapsed_regular(days, today, after, rules), scored)
