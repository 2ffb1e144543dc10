"""Fill a terminal store with many members quickly (bulk inserts, no ORM objects), and
what the tap benches share: the bare lookup they measure the store against, percentiles."""

from __future__ import annotations

import statistics

from sqlalchemy import insert

from pos_loyalty.store import LocalStore
from pos_loyalty.store.models import Card, Member


def seed_members(store: LocalStore, n: int, *, batch: int = 50_000) -> None:
    """Members M-0000000.. with cards C-0000000.., balances 0..499."""
    with store.engine.begin() as conn:
        for start in range(0, n, batch):
            ids = range(start, min(n, start + batch))
            conn.execute(insert(Member), [
                {"member_id": f"M-{i:07d}", "display_name": f"Member {i}", "tier": None,
                 "balance": i % 500, "lifetime_spend": 0, "visits": 0} for i in ids])
            conn.execute(insert(Card), [
                {"card_id": f"C-{i:07d}", "member_id": f"M-{i:07d}", "uid": None,
                 "status": "active"} for i in ids])


LOOKUP_SQL = ("SELECT members.member_id, members.display_name, members.tier, members.balance, "
              "cards.card_id, cards.status FROM members JOIN cards ON cards.member_id = "
              "members.member_id WHERE cards.card_id = ?")
"""A tap's lookup in bare sqlite3: the least the terminal's own lookup can cost."""


def pct(samples: list[float]) -> tuple[float, float]:
    """p50 and p99 of ``samples``."""
    qs = statistics.quantiles(samples, n=100)
    return qs[49], qs[98]
