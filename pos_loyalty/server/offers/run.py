"""An offers run: the owner's offers file against central's members -> issued coupons.

Each offer selects only the members its target matches (pure, :mod:`pos_loyalty.offers
.targets`), minus those its frequency cap holds back; an offer that would reach more than its
``max_members`` is not issued at all (no mass blast). The issue of every offer and the run's
summary go in one transaction with an audit entry; ``dry_run`` only counts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select

from pos_loyalty.errors import ConfigError
from pos_loyalty.ids import uuid7
from pos_loyalty.offers.file import OffersFile
from pos_loyalty.offers.targets import Bought, MemberFacts, Purchase, Target, matching
from pos_loyalty.offers.targets import select as select_members
from pos_loyalty.rules.parse import parse_text
from pos_loyalty.rules.program import Program
from pos_loyalty.server.db import Database
from pos_loyalty.server.offers import queries
from pos_loyalty.server.sales.insight import member_insight
from pos_loyalty.store.central_models import Member, SaleLine
from pos_loyalty.store.central_models import Program as ProgramRow


@dataclass(frozen=True)
class OfferOutcome:
    """What a run did (or would do) for one offer."""

    offer_id: str
    coupon: str
    matched: int       # members the target selects
    capped: int        # of those, held back by the frequency cap
    issued: int        # coupons issued (0 in a dry run, or when refused)
    refused: str       # why the offer was not issued ("" if it was)
    members: tuple[str, ...]  # who gets (would get) it


@dataclass(frozen=True)
class RunReport:
    run_id: str
    dry_run: bool
    expired: int       # live offers past their end, marked expired by this run
    outcomes: tuple[OfferOutcome, ...]


def live_programs(db: Database) -> list[tuple[str, Program]]:
    """The programs terminals run now (the chain's and each store's own), parsed."""
    with db.read() as conn:
        rows = conn.execute(select(ProgramRow.program_id, ProgramRow.name, ProgramRow.body,
                                   ProgramRow.version).order_by(ProgramRow.program_id)).all()
    out = []
    for pid, name, body, version in rows:
        label = f"program {name!r} v{version} ({pid})"
        try:
            out.append((label, parse_text(body, path=label)))
        except ConfigError as exc:
            raise ConfigError(f"the live {label} does not parse: {exc}") from exc
    return out



class MemberFactsSource:
    """Member facts for targeting, each kind read once per run and only when a target needs
    it: active claimed members (with their birthday's month and day), every member's stage
    and segments (:func:`pos_loyalty.server.sales.insight.member_insight`), and the
    purchases a ``bought`` condition looks at (``sale_lines``, narrowed in SQL by category
    and window)."""

    def __init__(self, db: Database, today: date) -> None:
        self.db = db
        self.today = today
        self._members: dict[str, date | None] | None = None
        self._insight: dict[str, tuple[str, frozenset[str]]] | None = None

    def members(self) -> dict[str, date | None]:
        if self._members is None:
            with self.db.read() as conn:
                rows = conn.execute(select(Member.member_id, Member.birthday).where(
                    Member.status == "active", Member.anonymous.is_(False))).all()
            self._members = {str(m): b for m, b in rows}
        return self._members

    def insight(self) -> dict[str, tuple[str, frozenset[str]]]:
        """member -> (stage, segments: the RFM segment, and lapsed_regular when so)."""
        if self._insight is None:
            self._insight = {
                i.member_id: (i.stage, frozenset({i.rfm.segment} |
                                                 ({"lapsed_regular"} if i.lapsed_regular
                                                  else set())))
                for i in member_insight(self.db, today=self.today)}
        return self._insight

    def purchases(self, rule: Bought) -> dict[str, list[Purchase]]:
        since = self.today - timedelta(days=rule.days - 1)
        line = SaleLine
        stmt = select(line.member_id, line.terminal_time, line.sku, line.category).where(
            line.kind == "sale", line.member_id.is_not(None),
            line.terminal_time >= datetime.combine(since, datetime.min.time()),
            line.terminal_time < datetime.combine(self.today + timedelta(days=1),
                                                  datetime.min.time()))
        if rule.category:
            stmt = stmt.where(func.lower(line.category) == rule.category.casefold())
        out: dict[str, list[Purchase]] = {}
        with self.db.read() as conn:
            for member_id, at, sku, category in conn.execute(stmt):
                out.setdefault(str(member_id), []).append(
                    Purchase(at.date(), str(sku), str(category or "")))
        return out

    def for_target(self, target: Target) -> list[MemberFacts]:
        members = self.members()
        insight = self.insight() if (target.stages or target.segments) else {}
        bought = self.purchases(target.bought) if target.bought is not None else {}
        out = []
        for member_id, birthday in members.items():
            stage, segments = insight.get(member_id, ("none", frozenset()))
            out.append(MemberFacts(member_id, birthday, stage, segments,
                                   tuple(bought.get(member_id, ()))))
        return out


def run_offers(db: Database, offers: OffersFile, *, dry_run: bool, actor: str,
               now: datetime | None = None) -> RunReport:
    """Select, cap and (unless ``dry_run``) issue every offer of the file."""
    now = now or db.clock()
    offers.check_coupons(live_programs(db))
    today = now.date()
    source = MemberFactsSource(db, today)
    run_id = str(uuid7())
    outcomes: list[OfferOutcome] = []
    issues: list[queries.Issue] = []
    for offer in offers.offers:
        facts = source.for_target(offer.target)
        recent = queries.issued_since(db, offer.id, now - timedelta(days=offer.cap_days))
        matched = matching(facts, offer.target, today)
        chosen = select_members(matched, recent, offer.cap_times)
        refused = ""
        if len(chosen) > offer.max_members:
            refused = (f"selects {len(chosen)} members, more than max_members = "
                       f"{offer.max_members}: not issued (narrow the target or raise it)")
        issued = 0 if (dry_run or refused) else len(chosen)
        if issued:
            ends = now + timedelta(days=offer.valid_days)
            issues += [queries.Issue(offer.id, m, offer.coupon, ends) for m in chosen]
        outcomes.append(OfferOutcome(offer.id, offer.coupon, len(matched),
                                     len(matched) - len(chosen), issued, refused,
                                     tuple(chosen)))
    expired = 0
    if not dry_run:
        expired = queries.expire(db, now)
        summary = {"file": offers.path, "expired": expired, "offers": [
            {k: v for k, v in asdict(o).items() if k != "members"} for o in outcomes]}
        queries.issue(db, issues, run_id=run_id, actor=actor, audit=summary)
    return RunReport(run_id, dry_run, expired, tuple(outcomes))


def outcome_rows(report: RunReport) -> list[tuple[str, ...]]:
    """The run as table rows: offer, coupon, matched, capped, issued, note."""
    verb = "would issue" if report.dry_run else "issued"
    return [(o.offer_id, o.coupon, str(o.matched), str(o.capped),
             "0" if o.refused else str(len(o.members) if report.dry_run else o.issued),
             o.refused or verb) for o in report.outcomes]
