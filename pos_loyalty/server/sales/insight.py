"""Every member's journey stage, RFM segment and visits, computed from central's sales.

One pass: the members' sales and refunds up to the day, streamed in (member, time) order
straight from a covering index (``ix_sales_member_time``: no sort, no table lookup), each
member's rows folded into visit days and spend as they go by, so a chain's members never sit
in memory with their history. The rules themselves are the pure
:mod:`pos_loyalty.insight.segments`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, String, cast, func, select

from pos_loyalty.insight.segments import DEFAULT_RULES, Rfm, Stage, StageRules, profile, rfm
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
    period_visits: int = 0           # days with a sale in the report's period
    period_last: date | None = None  # the last of them


def day_of(db: Database, column: Any) -> Any:
    """The calendar day of a timestamp column, in SQL (SQLite: its ISO text's date part)."""
    return cast(column, Date) if db.is_pg else func.substr(cast(column, String), 1, 10)


def as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _midnight(d: date) -> datetime:
    return datetime.combine(d, datetime.min.time())


def member_insight(db: Database, *, today: date, rules: StageRules = DEFAULT_RULES,
                   lapsed_after_days: int | None = None, period_days: int = 365,
                   since: date | None = None, stores: Sequence[str] = ()
                   ) -> Iterator[MemberInsight]:
    """Stage, lapsed-regular flag, RFM (over the ``period_days`` up to ``today``) and the
    visits since ``since`` of every member with a sale up to ``today``.

    ``lapsed_after_days`` defaults to the rules' ``lapse_days``.
    """
    after = rules.lapse_days if lapsed_after_days is None else lapsed_after_days
    rfm_since = today - timedelta(days=period_days - 1)
    s = SaleRecord
    stmt = (select(s.member_id, day_of(db, s.terminal_time), s.kind, s.paid_total)
            .where(s.member_id.is_not(None), s.kind.in_(REVENUE_KINDS),
                   s.terminal_time < _midnight(today + timedelta(days=1)))
            .order_by(s.member_id, s.terminal_time))
    if stores:
        stmt = stmt.where(s.store_id.in_(list(stores)))
    with db.read() as conn:
        result = conn.execution_options(stream_results=True, yield_per=20_000).execute(stmt)
        current: str | None = None
        days: list[date] = []
        spend = 0
        rows = (row for part in result.partitions() for row in part)
        for member_id, raw_day, kind, paid in rows:
            if member_id != current:
                if days:
                    yield _insight(current or "", days, spend, today, rules, after,
                                   period_days, since)
                current, days, spend = member_id, [], 0
            d = raw_day if isinstance(raw_day, date) else date.fromisoformat(raw_day)
            if d >= rfm_since:
                spend += int(paid)
            if kind == "sale" and (not days or days[-1] != d):
                days.append(d)
        if days:
            yield _insight(current or "", days, spend, today, rules, after, period_days,
                           since)


def _insight(member_id: str, days: list[date], spend: int, today: date, rules: StageRules,
             after: int, period_days: int, since: date | None) -> MemberInsight:
    scored = rfm(days, spend, today, period_days)
    assert scored is not None  # days is not empty
    got = profile(days, today, rules, lapsed_after_days=after)
    last: date | None = days[-1]
    n = len(days)
    if since is not None and days[0] < since:
        in_period = [d for d in days if d >= since]
        n, last = len(in_period), (in_period[-1] if in_period else None)
    return MemberInsight(member_id, len(days), days[0], days[-1], got.stage,
                         got.stage_before, got.lapsed_regular, scored, n, last)
