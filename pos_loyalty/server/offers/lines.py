"""The cashier's lines at central: each member's history line and the birthday switch.

For every active member: the line the history rules choose (:mod:`pos_loyalty.offers
.lines`, from the member's visits at central) and whether the terminal may add a birthday
line (the owner's ``birthday`` rule is on and the member has a birthday). Only rows that
change are written, so terminals pull only those (entity ``cashier_lines``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta

from sqlalchemy import select

from pos_loyalty.offers.file import CashierRules
from pos_loyalty.offers.lines import Visit, history_line
from pos_loyalty.server.db import Database
from pos_loyalty.server.offers import queries
from pos_loyalty.server.sales.insight import as_date, day_of
from pos_loyalty.store.central_models import Member, SaleLine


def member_visits(db: Database, today: date, days: int) -> dict[str, list[Visit]]:
    """Each member's visits in the ``days`` before ``today`` with the categories bought
    (as item names: "oat-milk" reads "oat milk")."""
    line = SaleLine
    day = day_of(db, line.terminal_time)
    since = datetime.combine(today - timedelta(days=days), datetime.min.time())
    stmt = (select(line.member_id, day, line.category).where(
        line.kind == "sale", line.member_id.is_not(None), line.terminal_time >= since,
        line.terminal_time < datetime.combine(today, datetime.min.time()))
        .group_by(line.member_id, day, line.category))
    per: dict[str, dict[date, set[str]]] = {}
    with db.read() as conn:
        for member_id, d, category in conn.execute(stmt):
            items = per.setdefault(str(member_id), {}).setdefault(as_date(d), set())
            name = " ".join(str(category or "").replace("-", " ").replace("_", " ").split())
            if name:
                items.add(name)
    return {m: [Visit(d, tuple(sorted(items))) for d, items in sorted(days_.items())]
            for m, days_ in per.items()}


def refresh_lines(db: Database, rules: CashierRules, visits: Mapping[str, Sequence[Visit]],
                  today: date) -> int:
    """Recompute every member's cashier line; returns the rows written (changed)."""
    with db.read() as conn:
        members = conn.execute(select(Member.member_id, Member.birthday).where(
            Member.status == "active")).all()
    rows = []
    for member_id, birthday in members:
        line = history_line(visits.get(member_id, ()), today, rules)
        bday = rules.birthday and birthday is not None
        if line or bday:
            rows.append((str(member_id), line, bday))
    return queries.write_lines(db, rows)
