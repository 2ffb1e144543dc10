"""The owner's reports over central's data: each a :class:`~pos_loyalty.insight.report.Report`
built from indexed aggregates (SQL does the summing; Python only what SQL cannot: stages,
the expiry of outstanding points, the replay behind the cost per rule).

The methods are written down in docs/reports.md; every figure has a hand-computed test.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from statistics import median
from typing import Any, TypeVar

from sqlalchemy import case, func, literal, literal_column, select, text

from pos_loyalty.insight.report import (
    Chart,
    Money,
    Percent,
    Phrase,
    Report,
    Table,
    nps_of_counts,
    shares,
    uplift,
)
from pos_loyalty.insight.segments import SEGMENTS, STAGES, StageRules
from pos_loyalty.rules.expiry import lot_expires
from pos_loyalty.rules.program import Program
from pos_loyalty.rules.replay import replay
from pos_loyalty.rules.settlement import PartnerActivity, settle
from pos_loyalty.server.db import Database, Refused
from pos_loyalty.server.sales.insight import MemberInsight, as_date, member_insight
from pos_loyalty.server.sales.queries import central_baskets
from pos_loyalty.store.central_models import (
    Balance,
    LedgerEvent,
    Member,
    PhoneNps,
    PhoneTap,
    SaleLine,
    SaleRecord,
    Store,
    VisitAnswer,
)

T = TypeVar("T")
NAMES = ("customers", "stages", "segments", "lapsed", "nps", "liability", "cost",
         "settlement", "tags")
REPLAY_SAMPLE = 2000


@dataclass(frozen=True)
class Options:
    """What every report is asked: the period (default: the 365 days up to today, by
    central's clock), the stores (default: all) and a few report-specific settings."""

    since: date | None = None
    until: date | None = None
    stores: tuple[str, ...] = ()
    lapsed_after_days: int | None = None
    own_return_rate: float = 0.25
    limit: int = 200
    rules: StageRules = field(default_factory=StageRules)


@dataclass(frozen=True)
class Period:
    since: date
    until: date

    @property
    def lo(self) -> datetime:
        return datetime.combine(self.since, datetime.min.time())

    @property
    def hi(self) -> datetime:
        return datetime.combine(self.until + timedelta(days=1), datetime.min.time())

    @property
    def days(self) -> int:
        return (self.until - self.since).days + 1

    @property
    def span(self) -> Phrase:
        """The period as a report's subtitle: its first to its last day."""
        return Phrase("%(since)s to %(until)s", {"since": self.since.isoformat(),
                                                 "until": self.until.isoformat()})

    @property
    def end(self) -> Phrase:
        """The period's last day as a report's subtitle (a report of where members stand)."""
        return Phrase("on %(day)s", {"day": self.until.isoformat()})


LAST_DAY = date(9998, 12, 31)
"""The latest day a period may end: its months and its end's midnight must still be dates."""
MAX_DAYS = 3660
"""The longest period (ten years): a report's months are rows and chart points, and a page
of centuries of empty months would take seconds and megabytes to draw."""


def period_of(db: Database, opts: Options) -> Period:
    """The period asked for, after checking what was asked: a period that ends before it
    starts or beyond the calendar, or a store the chain does not have, is refused with the
    reason (an unknown store would otherwise give an empty report that looks real)."""
    until = opts.until or db.clock().date()
    if until > LAST_DAY:
        raise Refused(f"the period ends too late ({until}); the last day is {LAST_DAY}",
                      status=422)
    since = opts.since or until - timedelta(days=364)
    if since > until:
        raise Refused(f"the period starts ({since}) after it ends ({until})", status=422)
    if (until - since).days >= MAX_DAYS:
        raise Refused(f"the period from {since} to {until} is longer than {MAX_DAYS} days "
                      "(ten years): give a later start", status=422)
    if opts.stores:
        known = store_ids(db)
        unknown = sorted(set(opts.stores) - set(known))
        if unknown:
            raise Refused(f"no store{'s' if len(unknown) > 1 else ''} "
                          f"{', '.join(map(repr, unknown))}; stores are "
                          f"{', '.join(known) or 'none yet'}", status=404)
    return Period(since, until)


class Context:
    """What several reports of one build share, each part computed once and kept: every
    member's insight, the period's revenue and visits, the live program, the held points,
    the replay sample. With a thread pool, the parts that are one long SQL query start at
    once in the pool (SQLite and PostgreSQL run them while Python folds the member pass:
    two cores, both busy)."""

    def __init__(self, db: Database, opts: Options, p: Period) -> None:
        self.db, self.opts, self.p = db, opts, p
        self._started: dict[str, Future[Any]] = {}
        self._done: dict[str, Any] = {}

    def prefetch(self, pool: Executor, names: Sequence[str]) -> None:
        """Start the SQL-heavy parts the reports ``names`` will need."""
        db, opts, p = self.db, self.opts, self.p
        if "liability" in names:
            self._started["held"] = pool.submit(held_lots, db)
        if "cost" in names:
            self._started["sample"] = pool.submit(_sample_ids, db, opts, p)
        if "customers" in names or "cost" in names:
            self._started["revenue"] = pool.submit(_revenue, db, opts, p)

    def part(self, name: str, compute: Callable[[], T]) -> T:
        """The part ``name``: kept from before, prefetched, or computed now (and kept)."""
        if name not in self._done:
            started = self._started.pop(name, None)
            self._done[name] = started.result() if started is not None else compute()
        result: T = self._done[name]
        return result

    @property
    def members(self) -> list[MemberInsight]:
        return self.part("members", lambda: list(member_insight(
            self.db, today=self.p.until, rules=self.opts.rules,
            lapsed_after_days=self.opts.lapsed_after_days or self.opts.rules.lapse_days,
            since=self.p.since, stores=self.opts.stores)))

    @property
    def program(self) -> Program:
        return self.part("program", lambda: live_program(self.db))

    @property
    def revenue(self) -> dict[tuple[str, bool, str], tuple[int, int]]:
        return self.part("revenue", lambda: _revenue(self.db, self.opts, self.p))

    @property
    def product_nps(self) -> list[tuple[str, str, int, int, int]]:
        return self.part("product_nps", lambda: _product_nps(self.db, self.opts, self.p))

    @property
    def visits(self) -> Visits:
        return self.part("visits", lambda: _visits(self))


def build(db: Database, name: str, opts: Options | None = None,
          ctx: Context | None = None) -> Report:
    """The report ``name`` (one of :data:`NAMES`)."""
    opts = opts or Options()
    builder = BUILDERS.get(name)
    if builder is None:
        raise Refused(f"no report {name!r}; reports are {', '.join(NAMES)}", status=404)
    return builder(ctx if ctx is not None else Context(db, opts, period_of(db, opts)))


def _month(db: Database, column: Any) -> Any:
    # the format is SQL text, not a parameter: PostgreSQL groups by it only if it is
    if db.is_pg:
        return func.to_char(column, literal_column("'YYYY-MM'"))
    return func.substr(column, 1, 7)  # SQLite keeps the ISO text: its first 7 characters


def _in_period(stmt: Any, column: Any, p: Period) -> Any:
    return stmt.where(column >= p.lo, column < p.hi)


def _stores(stmt: Any, column: Any, opts: Options) -> Any:
    return stmt.where(column.in_(list(opts.stores))) if opts.stores else stmt


def _months(p: Period) -> list[str]:
    out, d = [], p.since.replace(day=1)
    while d <= p.until:
        out.append(f"{d.year:04d}-{d.month:02d}")
        d = (d + timedelta(days=32)).replace(day=1)
    return out


def live_program(db: Database) -> Program:
    """The chain-wide live program (the built-in one when none is published)."""
    from pos_loyalty.server.programs.queries import live_for, rules_of

    return rules_of(live_for(db, None))


# -- customers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Visits:
    members: int
    visits: int
    repeat_members: int
    repeat_visits: int
    recency: list[int]


def _visits(ctx: Context) -> Visits:
    """Members who bought in the period, their visits and days since their last one."""
    members = visits = repeat = repeat_visits = 0
    recency: list[int] = []
    for m in ctx.members:
        if not m.period_visits or m.period_last is None:
            continue
        members += 1
        visits += m.period_visits
        repeat += m.period_visits >= 2
        repeat_visits += m.period_visits - 1
        recency.append((ctx.p.until - m.period_last).days)
    return Visits(members, visits, repeat, repeat_visits, recency)


def _revenue(db: Database, opts: Options,
             p: Period) -> dict[tuple[str, bool, str], tuple[int, int]]:
    """(month, is member, kind) -> (records, net paid) over the period: one scan of the
    covering time index, shared by the reports of a build (:attr:`Context.revenue`)."""
    s = SaleRecord
    month = _month(db, s.terminal_time)
    is_member = case((s.member_id.is_(None), literal(0)), else_=literal(1))
    stmt = select(month, is_member, s.kind, func.count(), func.sum(s.paid_total)).where(
        s.kind.in_(("sale", "refund"))).group_by(month, is_member, s.kind)
    stmt = _stores(_in_period(stmt, s.terminal_time, p), s.store_id, opts)
    with db.read() as conn:
        return {(str(mo), bool(m), k): (int(n), int(v or 0))
                for mo, m, k, n, v in conn.execute(stmt)}


def _totals(ctx: Context) -> dict[tuple[bool, str], tuple[int, int]]:
    out: dict[tuple[bool, str], tuple[int, int]] = {}
    for (_, m, k), (n, v) in ctx.revenue.items():
        a, b = out.get((m, k), (0, 0))
        out[(m, k)] = (a + n, b + v)
    return out


def customers(ctx: Context) -> Report:
    p = ctx.p
    v = ctx.visits
    rev = _totals(ctx)
    member_rev = sum(x[1] for (m, _), x in rev.items() if m)
    total_rev = sum(x[1] for x in rev.values())
    by_month: dict[str, list[int]] = {m: [0, 0] for m in _months(p)}
    for (mo, member, _), (_, total) in ctx.revenue.items():
        by_month.setdefault(mo, [0, 0])[int(member)] += total
    months = sorted(by_month)
    rows: list[tuple[Any, ...]] = [
        (m, Money(by_month[m][1]), Money(by_month[m][0]),
         Percent(shares([by_month[m][1], by_month[m][0]])[0])) for m in months]
    return Report("customers", "Customers", p.span, figures=[
        ("Members who bought", v.members),
        ("Repeat-customer rate", Percent(v.repeat_members / v.members if v.members else 0)),
        ("Purchase frequency (visits per member)",
         round(v.visits / v.members, 2) if v.members else 0),
        ("Median days since last visit", int(median(v.recency)) if v.recency else None),
        ("Spend per member", Money(member_rev // v.members if v.members else 0)),
        ("Revenue from members", Money(member_rev)),
        ("Revenue, all sales", Money(total_rev)),
        ("Share of revenue from members", Percent(member_rev / total_rev if total_rev else 0)),
    ], tables=[Table("Revenue by month", ("Month", "Members", "Other customers",
                                         "Members' share"), rows, "months")],
        charts=[Chart("line", "Revenue by month", months, [
            ("Members", [by_month[m][1] / 100 for m in months]),
            ("Other customers", [by_month[m][0] / 100 for m in months])], "revenue")],
        notes=[Phrase("A visit is a day with a sale; revenue is money paid less money "
                      "refunded.")])


# -- stages, segments, lapsed ------------------------------------------------------------------


def stages(ctx: Context) -> Report:
    p = ctx.p
    counts = dict.fromkeys(STAGES, 0)
    counts.pop("none")
    for m in ctx.members:
        counts[m.stage] += 1
    total = sum(counts.values())
    names = list(counts)
    return Report("stages", "Journey stages", p.end, figures=[
        ("Members with a sale", total)],
        tables=[Table("Members by stage", ("Stage", "Members", "Share"), [
            (n.replace("_", " "), counts[n], Percent(counts[n] / total if total else 0))
            for n in names], "stages")],
        charts=[Chart("bar", "Members by stage", [n.replace("_", " ") for n in names],
                      [("Members", [counts[n] for n in names])], "stages")],
        notes=[Phrase("Stages follow the rules in docs/reports.md (a visit is a day with a "
                      "sale).")])


def segments(ctx: Context) -> Report:
    p = ctx.p
    names = [n for n, _ in SEGMENTS]
    acc = {n: [0, 0, 0] for n in names}  # members, visits, spend
    for m in ctx.members:
        row = acc[m.rfm.segment]
        row[0] += 1
        row[1] += m.rfm.frequency
        row[2] += m.rfm.monetary
    total = sum(r[0] for r in acc.values())
    rows: list[tuple[Any, ...]] = []
    for n, cond in SEGMENTS:
        k, visits, spend = acc[n]
        rows.append((n.replace("_", " "), cond or "-", k,
                     Percent(k / total if total else 0),
                     round(visits / k, 1) if k else 0, Money(spend // k if k else 0)))
    return Report("segments", "RFM segments", p.end,
                  figures=[("Members with a sale", total)],
                  tables=[Table("Members by segment", ("Segment", "Rule", "Members", "Share",
                                                      "Visits a year", "Spend a year"),
                                rows, "segments")],
                  charts=[Chart("bar", "Members by segment",
                                [n.replace("_", " ") for n in names],
                                [("Members", [acc[n][0] for n in names])], "segments")],
                  notes=[Phrase("R, F and M are scored 1-5 by the fixed cut points in "
                                "docs/reports.md, over the 365 days up to the report's "
                                "day.")])


def lapsed(ctx: Context) -> Report:
    db, opts, p = ctx.db, ctx.opts, ctx.p
    after = opts.lapsed_after_days or opts.rules.lapse_days
    found = [m for m in ctx.members if m.lapsed_regular]
    found.sort(key=lambda m: (-m.visits, m.member_id))
    listed = found[:opts.limit]
    ids = [m.member_id for m in listed]
    names: dict[str, tuple[str, str]] = {}
    cats: dict[str, list[tuple[int, str]]] = {}
    last_stores: dict[str, list[tuple[datetime, str]]] = {}
    with db.read() as conn:
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            for mid, name, email in conn.execute(select(
                    Member.member_id, Member.display_name, Member.email).where(
                    Member.member_id.in_(chunk))):
                names[mid] = (name, email)
            for lm, cat, amount in conn.execute(select(
                    SaleLine.member_id, SaleLine.category, func.sum(SaleLine.amount))
                    .where(SaleLine.member_id.in_(chunk), SaleLine.kind != "void")
                    .group_by(SaleLine.member_id, SaleLine.category)):
                cats.setdefault(str(lm), []).append((int(amount or 0), cat))
            for sm, store, last in conn.execute(select(
                    SaleRecord.member_id, SaleRecord.store_id, func.max(SaleRecord.terminal_time))
                    .where(SaleRecord.member_id.in_(chunk), SaleRecord.kind == "sale")
                    .group_by(SaleRecord.member_id, SaleRecord.store_id)):
                last_stores.setdefault(str(sm), []).append((last, store))
    rows: list[tuple[Any, ...]] = []
    for m in listed:
        name, email = names.get(m.member_id, ("", ""))
        fav = [c for _, c in sorted(cats.get(m.member_id, []), key=lambda x: (-x[0], x[1]))
               if c][:2]
        where = [st for _, st in sorted(last_stores.get(m.member_id, []), reverse=True)][:2]
        rows.append((m.member_id, name, email, m.last_visit.isoformat(),
                     (p.until - m.last_visit).days, m.visits,
                     m.stage_before.replace("_", " "), ", ".join(where), ", ".join(fav)))
    return Report("lapsed", "Lapsed regulars to call", p.end, figures=[
        ("Lapsed regulars", len(found)), ("Not seen for more than (days)", after)],
        tables=[Table("Call list", ("Member", "Name", "E-mail", "Last visit", "Days away",
                                    "Visits", "Was", "Last stores", "Favourite categories"),
                      rows, "call-list")],
        notes=[Phrase("Regular or loyal at their last visit and not seen for more than "
                      "%(days)s days; the %(limit)s with most visits are listed.",
                      {"days": after, "limit": opts.limit})])


# -- NPS ----------------------------------------------------------------------------------------


def _nps_counts(db: Database, stmt: Any) -> list[tuple[str, str, int, int, int]]:
    """(month, key, answers, promoters, detractors) rows of an NPS aggregate."""
    with db.read() as conn:
        return [(str(mo), str(key), int(n), int(prom or 0), int(det or 0))
                for mo, key, n, prom, det in conn.execute(stmt)]


def _nps_columns(score: Any) -> tuple[Any, Any, Any]:
    """Answers, promoters (9-10) and detractors (0-6) of a score column, summed in SQL."""
    return (func.count(), func.sum(case((score >= 9, 1), else_=0)),
            func.sum(case((score <= 6, 1), else_=0)))


def _product_nps(db: Database, opts: Options,
                 p: Period) -> list[tuple[str, str, int, int, int]]:
    """Product tag answers by (month, product), of the chosen stores' taps: shared by the
    NPS and tag reports of a build (:attr:`Context.product_nps`)."""
    pn = PhoneNps
    month = _month(db, pn.answered_at)
    stmt = select(month, pn.sku, *_nps_columns(pn.score)).join(
        PhoneTap, PhoneTap.tap_id == pn.tap_id, isouter=True)
    return _nps_counts(db, _stores(_in_period(stmt, pn.answered_at, p), PhoneTap.store_id,
                                   opts).group_by(month, pn.sku))


def nps_report(ctx: Context) -> Report:
    db, opts, p = ctx.db, ctx.opts, ctx.p
    va = VisitAnswer
    visits = _stores(_in_period(select(_month(db, va.answered_at), va.store_id,
                                       *_nps_columns(va.score)), va.answered_at, p),
                     va.store_id, opts).group_by(_month(db, va.answered_at), va.store_id)
    rows_v, rows_p = _nps_counts(db, visits), ctx.product_nps
    months = _months(p)
    by_month = {m: [0, 0, 0] for m in months}
    by_store: dict[str, list[int]] = {}
    by_sku: dict[str, list[int]] = {}
    for rows, key_map in ((rows_v, by_store), (rows_p, by_sku)):
        for month, key, n, prom, det in rows:
            for acc in (by_month.setdefault(month, [0, 0, 0]),
                        key_map.setdefault(key, [0, 0, 0])):
                acc[0] += n
                acc[1] += prom
                acc[2] += det
    total = [sum(v[i] for v in by_month.values()) for i in range(3)]
    overall = nps_of_counts(*total)

    def table_rows(d: dict[str, list[int]]) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        for k in sorted(d):
            x = nps_of_counts(*d[k])
            out.append((k, x.answers, x.promoters, x.passives, x.detractors, x.score))
        return out

    heads = ("Answers", "Promoters", "Passives", "Detractors", "NPS")
    comments = _comments(db, opts, p)
    ms = sorted(by_month)
    return Report("nps", "Net Promoter Score", p.span, figures=[
        ("NPS", overall.score), ("Answers", overall.answers),
        ("Promoters (9-10)", overall.promoters), ("Passives (7-8)", overall.passives),
        ("Detractors (0-6)", overall.detractors)],
        tables=[Table("By month", ("Month", *heads), table_rows(by_month), "months"),
                Table("By store (visit answers)", ("Store", *heads), table_rows(by_store),
                      "stores"),
                Table("By product (tag answers)", ("Product", *heads), table_rows(by_sku),
                      "products"),
                Table("Latest comments", ("Answered", "Score", "Where", "Comment"), comments,
                      "comments")],
        charts=[Chart("line", "NPS by month", ms,
                      [("NPS", [nps_of_counts(*by_month[m]).score for m in ms])], "nps")],
        notes=[Phrase("NPS = %% promoters (9-10) - %% detractors (0-6), from visit answers "
                      "(receipt links) and product tag answers.")])


def _comments(db: Database, opts: Options, p: Period) -> list[tuple[Any, ...]]:
    va, pn = VisitAnswer, PhoneNps
    a = _stores(_in_period(select(va.answered_at, va.score, va.store_id, va.comment).where(
        va.comment != ""), va.answered_at, p), va.store_id, opts)
    b = select(pn.answered_at, pn.score, pn.sku, pn.comment).join(
        PhoneTap, PhoneTap.tap_id == pn.tap_id, isouter=True).where(pn.comment != "")
    b = _stores(_in_period(b, pn.answered_at, p), PhoneTap.store_id, opts)
    with db.read() as conn:
        got = [tuple(r) for r in conn.execute(a.order_by(va.answered_at.desc()).limit(30))]
        got += [tuple(r) for r in conn.execute(b.order_by(pn.answered_at.desc()).limit(30))]
    got.sort(key=lambda r: r[0], reverse=True)
    return [(r[0].strftime("%Y-%m-%d"), r[1], r[2], r[3]) for r in got[:30]]


# -- liability ---------------------------------------------------------------------------------


def liability(ctx: Context) -> Report:
    db, p = ctx.db, ctx.p
    program = ctx.program
    with db.read() as conn:
        outstanding = int(conn.execute(select(func.coalesce(func.sum(Balance.balance), 0))
                                       .where(Balance.balance > 0)).scalar_one())
        le = LedgerEvent
        stmt = _in_period(select(le.kind, func.sum(le.points)).where(
            le.status == "applied").group_by(le.kind), le.terminal_time, p)
        kinds: dict[str, Any] = dict(conn.execute(stmt).all())
    earned = int(kinds.get("earn") or 0)
    redeemed = -int(kinds.get("redeem") or 0)
    expired = -int(kinds.get("expire") or 0)
    rows: list[tuple[Any, ...]] = []
    notes = [Phrase("Outstanding points are every positive balance; their value is at the "
                    "live program's redemption rate (%(program)s).",
                    {"program": program.name})]
    labels: list[str] = []
    values: list[float | None] = []
    if program.expiry.mode == "none":
        notes.append(Phrase("Points do not expire under %(program)s.",
                            {"program": program.name}))
    else:
        by_month: dict[str, int] = {}
        for earned_on, pts in ctx.part("held", lambda: held_lots(db)):
            last = lot_expires(earned_on, program.expiry)
            key = "never" if last is None else f"{last.year:04d}-{last.month:02d}"
            by_month[key] = by_month.get(key, 0) + pts
        for k in sorted(by_month):
            rows.append((k, by_month[k], Money(program.rate.liability(by_month[k]))))
        labels = sorted(by_month)
        values = [float(by_month[k]) for k in labels]
        notes.append(Phrase("A balance is held by the member's newest points (the till "
                            "spends the oldest first); a month is when their last valid "
                            "day falls."))
    return Report("liability", "Points liability", p.span, figures=[
        ("Outstanding points", outstanding),
        ("Their value", Money(program.rate.liability(outstanding))),
        ("Points earned in the period", earned), ("Points redeemed in the period", redeemed),
        ("Points expired in the period", expired),
        ("Redemption rate", Percent(redeemed / earned if earned else 0))],
        tables=[Table("Expiry schedule", ("Expires in", "Points", "Value"), rows,
                      "expiry")],
        charts=[Chart("bar", "Points by month of expiry", labels, [("Points", values)],
                      "expiry")] if labels else [],
        notes=notes)


def held_lots(db: Database) -> list[tuple[date, int]]:
    """Outstanding points by the day they were earned, chain-wide: each positive balance is
    held by the member's newest gains (the oldest were spent first), found in SQL with a
    running sum over each member's gains, newest first. Newest by event id: a UUIDv7, made
    from the clock of whoever wrote the event, so in the ledger's own key order (no sort)."""
    sql = text("""
        WITH gains AS (
            SELECT l.member_id, {day} AS day, l.points, b.balance,
                   SUM(l.points) OVER (PARTITION BY l.member_id ORDER BY l.event_id DESC)
                       AS newer
            FROM ledger_events l JOIN balances b ON b.member_id = l.member_id
            WHERE l.status = 'applied' AND l.points > 0 AND b.balance > 0)
        SELECT day, SUM(CASE WHEN newer <= balance THEN points
                             ELSE balance - (newer - points) END)
        FROM gains WHERE newer - points < balance GROUP BY day ORDER BY day
    """.format(day="CAST(l.terminal_time AS DATE)" if db.is_pg
               else "substr(l.terminal_time, 1, 10)"))
    with db.read() as conn:
        return [(as_date(d), int(n)) for d, n in conn.execute(sql)]


# -- cost ---------------------------------------------------------------------------------------


def cost(ctx: Context) -> Report:
    db, opts, p = ctx.db, ctx.opts, ctx.p
    program = ctx.program
    s = SaleRecord
    stmt = _stores(_in_period(select(
        func.count(), func.coalesce(func.sum(s.points_earned), 0),
        func.coalesce(func.sum(s.points_redeemed), 0),
        func.coalesce(func.sum(s.discount_total), 0)).where(
        s.kind.in_(("sale", "refund")), s.member_id.is_not(None)), s.terminal_time, p),
        s.store_id, opts)
    with db.read() as conn:
        _, pts_earned, pts_redeemed, discounts = (int(x) for x in conn.execute(stmt).one())
    rev = _totals(ctx)
    v = ctx.visits
    m_sales, m_rev = rev.get((True, "sale"), (0, 0))
    a_sales, a_rev = rev.get((False, "sale"), (0, 0))
    up = uplift(members=v.members, repeat_members=v.repeat_members,
                repeat_visits=v.repeat_visits,
                member_revenue=m_rev + rev.get((True, "refund"), (0, 0))[1],
                member_sales=m_sales, anonymous_revenue=a_rev, anonymous_sales=a_sales,
                own_return_rate=opts.own_return_rate)
    redeemed_money = program.rate.value_of(pts_redeemed)
    other_discounts = max(0, discounts - redeemed_money)
    points_cost = program.rate.liability(pts_earned)
    total_cost = other_discounts + points_cost
    ids = ctx.part("sample", lambda: _sample_ids(db, opts, p))
    sample = list(central_baskets(db, days=p.days, stores=opts.stores, now=p.hi,
                                  sale_ids=ids))
    rep = replay(sample, program)
    rule_costs = [r.cost for r in rep.rules]
    rows: list[tuple[Any, ...]] = []
    for r, share in zip(rep.rules, shares(rule_costs), strict=True):
        rows.append((r.rule, r.sales, r.points, Money(r.discounts), Money(r.perks),
                     Money(r.cost), Percent(share), Money(round(share * total_cost))))
    return Report("cost", "Program cost against extra revenue", p.span, figures=[
        ("Program cost", Money(total_cost)),
        ("  points earned, valued", Money(points_cost)),
        ("  discounts (not redemptions)", Money(other_discounts)),
        ("Extra revenue from members", Money(up.extra_revenue)),
        ("  basket uplift", Money(up.basket_uplift)),
        ("  retained repeat visits", Money(up.retained)),
        ("Extra revenue less cost", Money(up.extra_revenue - total_cost)),
        ("Return on cost", Percent(up.extra_revenue / total_cost if total_cost else 0)),
        ("Average member sale", Money(up.member_basket)),
        ("Average other sale", Money(up.anonymous_basket))],
        tables=[Table("Cost per rule (replay of the period's sales)",
                      ("Rule", "Sales", "Points", "Discounts", "Perks", "Cost in replay",
                       "Share", "Share of program cost"), rows, "rules")],
        charts=[Chart("bar", "Cost per rule", [r.rule for r in rep.rules],
                      [("Cost", [c / 100 for c in rule_costs])], "rules")] if rows else [],
        notes=[Phrase("Method (docs/reports.md): cost = points earned valued at the "
                      "redemption rate + discounts other than redemptions; extra revenue = "
                      "basket uplift + members' repeat visits at the average other sale, "
                      "times the share of returning members above the %(own)s who would "
                      "come back anyway; the split per rule replays %(sales)s of the "
                      "period's member baskets under the live program.",
                      {"own": str(Percent(opts.own_return_rate)), "sales": rep.sales})])


def _sample_ids(db: Database, opts: Options, p: Period) -> list[str]:
    """At most REPLAY_SAMPLE of the period's member sales: all when there are fewer, else a
    random sample drawn by the database."""
    s = SaleRecord
    stmt = _stores(_in_period(select(s.sale_id).where(
        s.kind == "sale", s.member_id.is_not(None)), s.terminal_time, p), s.store_id, opts)
    with db.read() as conn:
        return [str(x) for x in conn.execute(
            stmt.order_by(func.random()).limit(REPLAY_SAMPLE)).scalars()]


# -- settlement, tags -------------------------------------------------------------------------


def settlement(ctx: Context) -> Report:
    db, p = ctx.db, ctx.p
    program = ctx.program
    if program.coalition is None:
        return Report("settlement", "Partner settlement", p.span,
                      notes=[Phrase("The live program (%(program)s) is not a coalition "
                                    "program: there is nothing to settle.",
                                    {"program": program.name})])
    s = SaleRecord
    stmt = _in_period(select(s.store_id, func.sum(s.points_earned),
                             func.sum(s.points_redeemed)).where(
        s.kind.in_(("sale", "refund"))).group_by(s.store_id), s.terminal_time, p)
    partners = {x.merchant_id for x in program.coalition.partners}
    activity: list[PartnerActivity] = []
    with db.read() as conn:
        for store, earned, redeemed in conn.execute(stmt):
            if store not in partners:
                continue
            if int(earned or 0) > 0:
                activity.append(PartnerActivity(store, "earn", int(earned)))
            if int(redeemed or 0) > 0:
                activity.append(PartnerActivity(store, "redeem", int(redeemed)))
    totals = settle(activity, program)
    return Report("settlement", "Partner settlement", p.span, figures=[
        ("Partners", len(totals))],
        tables=[Table("Totals per partner", ("Partner", "Name", "Points issued",
                                             "Points redeemed", "Owes", "Owed", "Fee",
                                             "Net (paid to partner)"),
                      [(t.merchant_id, t.name, t.points_issued, t.points_redeemed,
                        Money(t.owes), Money(t.owed), Money(t.fee), Money(t.net))
                       for t in totals], "partners")],
        notes=[Phrase("A partner is a store whose id is a merchant of the live coalition "
                      "program; points issued owe their liability plus the fee, points "
                      "redeemed are owed their value.")])


def tags(ctx: Context) -> Report:
    db, opts, p = ctx.db, ctx.opts, ctx.p
    t = PhoneTap
    genuine = func.sum(case((t.result == "genuine", 1), else_=0))
    stmt = _stores(select(t.sku, func.count(), genuine).where(
        t.day >= p.since, t.day <= p.until).group_by(t.sku), t.store_id, opts)
    with db.read() as conn:
        taps = conn.execute(stmt).all()
    by_sku: dict[str, list[int]] = {}
    for _, sku, n, prom, det in ctx.product_nps:
        acc = by_sku.setdefault(sku, [0, 0, 0])
        acc[0], acc[1], acc[2] = acc[0] + n, acc[1] + prom, acc[2] + det
    scores = {sku: nps_of_counts(*acc) for sku, acc in by_sku.items()}
    rows: list[tuple[Any, ...]] = []
    total = first = 0
    for sku, n, g in sorted(taps, key=lambda r: (-int(r[1]), r[0])):
        total += int(n)
        first += int(g or 0)
        x = scores.get(sku)
        rows.append((sku, int(n), int(g or 0), Percent(int(g or 0) / int(n) if n else 0),
                     x.answers if x else 0, x.score if x else None))
    return Report("tags", "Product tag taps", p.span, figures=[
        ("Taps", total), ("First taps (genuine)", first),
        ("First-tap rate", Percent(first / total if total else 0))],
        tables=[Table("Per product", ("Product", "Taps", "First taps", "First-tap rate",
                                      "NPS answers", "NPS"), rows, "products")],
        charts=[Chart("bar", "Taps per product", [str(r[0]) for r in rows],
                      [("Taps", [float(r[1]) for r in rows]),
                       ("First taps", [float(r[2]) for r in rows])], "taps")] if rows else [],
        notes=[Phrase("A first tap is a tag's first genuine read; later reads of the same "
                      "URL are replays.")])


BUILDERS: dict[str, Callable[[Context], Report]] = {
    "customers": customers, "stages": stages, "segments": segments, "lapsed": lapsed,
    "nps": nps_report, "liability": liability, "cost": cost, "settlement": settlement,
    "tags": tags,
}


def store_ids(db: Database) -> list[str]:
    """Every store of the chain (for a report's store filter)."""
    with db.read() as conn:
        return [str(x) for x in conn.execute(select(Store.store_id).order_by(Store.store_id))
                .scalars()]


def build_all(db: Database, opts: Options | None = None,
              names: Sequence[str] = NAMES) -> list[Report]:
    """Several reports over one shared pass of the members (long queries in parallel)."""
    opts = opts or Options()
    ctx = Context(db, opts, period_of(db, opts))
    if len(names) == 1:
        return [build(db, names[0], opts, ctx)]
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="report") as pool:
        ctx.prefetch(pool, names)
        return [build(db, n, opts, ctx) for n in names]
