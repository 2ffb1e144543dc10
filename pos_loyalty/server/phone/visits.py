"""One question about a visit: the short link a receipt carries, ``/v/<sale's event id>``.

The terminal prints ``<central>/v/<event id without dashes>`` of the sale's earn event (a
UUIDv7: 74 random bits, not guessable). Once the event has reached central, the link asks
"how likely are you to recommend us?" about that store; one answer per sale (the latest
kept), tied to the member and the store, nothing personal shown. ``store_nps`` gives the
figure per store.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, case, func, select

from pos_loyalty.server.db import Database
from pos_loyalty.store.central_models import LedgerEvent, VisitAnswer

_LINK_RE = re.compile(r"[0-9a-f]{32}")


def event_id_of(link: str) -> str | None:
    """The event id a link's last part names (32 lower-case hex digits), else None."""
    if not _LINK_RE.fullmatch(link):
        return None
    return str(uuid.UUID(hex=link))


@dataclass(frozen=True)
class Visit:
    event_id: str
    member_id: str
    store_id: str
    at: datetime
    score: int | None


def visit(db: Database, event_id: str) -> Visit | None:
    """The sale behind a receipt link: an applied earn event of a till, if central has it."""
    with db.read() as conn:
        row = conn.execute(
            select(LedgerEvent.member_id, LedgerEvent.store_id, LedgerEvent.terminal_time,
                   VisitAnswer.score)
            .outerjoin(VisitAnswer, VisitAnswer.event_id == LedgerEvent.event_id)
            .where(LedgerEvent.event_id == event_id, LedgerEvent.kind == "earn",
                   LedgerEvent.status == "applied")).first()
    if row is None:
        return None
    return Visit(event_id, row[0], row[1], row[2], row[3])


def answer(db: Database, v: Visit, score: int, comment: str) -> None:
    def tx(conn: Connection) -> None:
        stmt = db.insert(VisitAnswer).values(
            event_id=v.event_id, member_id=v.member_id, store_id=v.store_id, score=score,
            comment=comment, answered_at=db.clock())
        conn.execute(stmt.on_conflict_do_update(
            index_elements=[VisitAnswer.event_id],
            set_={"score": stmt.excluded.score, "comment": stmt.excluded.comment,
                  "answered_at": stmt.excluded.answered_at}))

    db.write(tx)


@dataclass(frozen=True)
class StoreNps:
    store_id: str
    answers: int
    nps: int  # % promoters - % detractors


def store_nps(db: Database, since: datetime, until: datetime) -> list[StoreNps]:
    """NPS per store from the visit answers given in ``[since, until)``."""
    with db.read() as conn:
        rows = conn.execute(
            select(VisitAnswer.store_id, func.count(),
                   func.sum(case((VisitAnswer.score >= 9, 1), else_=0)),
                   func.sum(case((VisitAnswer.score <= 6, 1), else_=0)))
            .where(VisitAnswer.answered_at >= since, VisitAnswer.answered_at < until)
            .group_by(VisitAnswer.store_id).order_by(VisitAnswer.store_id)).all()
    return [StoreNps(r[0], int(r[1]), round(100 * (int(r[2]) - int(r[3])) / int(r[1])))
            for r in rows]
