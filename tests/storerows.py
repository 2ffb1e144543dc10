"""What a terminal store holds, read straight from its tables for tests to assert on (the
terminal itself never needs these views)."""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from pos_loyalty.store.phone import TagLink
from pos_loyalty.store.sale_outbox import SaleSummary


def unpushed_sales(engine: Engine) -> int:
    """Sale summaries central has not acknowledged yet."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(SaleSummary).where(
            SaleSummary.pushed.is_(False))).scalar_one())


def tag_links(engine: Engine) -> list[tuple[str, str, str]]:
    """(uid, member_id, status) of every product-tag link kept, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(select(TagLink.uid, TagLink.member_id, TagLink.status)
                            .order_by(TagLink.id)).all()
    return [(r[0], r[1], r[2]) for r in rows]
