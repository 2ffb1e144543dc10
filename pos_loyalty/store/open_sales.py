"""Open sales kept across a restart: what the till was quoted, not yet committed or voided.

One row per (pos_id, txn_id), written after each basket or redemption and dropped when the
sale is committed or voided, so that a terminal killed mid-sale still knows the basket, its
member and its redemption when it comes back (docs/pos-protocol.md 6.3). SQLite, like the
rest of the terminal's store; every database error leaves as StoreError.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Engine, String, Text, delete, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, mapped_column

from pos_loyalty.store.models import Base
from pos_loyalty.store.sqlite import write

LineTuple = tuple[str, int, int, str]  # sku, qty, unit_price, category


class OpenSale(Base):
    """A sale the till was quoted and has not committed or voided yet."""

    __tablename__ = "open_sales"

    pos_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    txn_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    member_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    member_name: Mapped[str] = mapped_column(String(500), default="")
    member_balance: Mapped[int] = mapped_column(BigInteger, default=0)
    lines: Mapped[str] = mapped_column(Text, default="[]")  # [[sku, qty, unit_price, category]]
    redeem_points: Mapped[int] = mapped_column(BigInteger, default=0)
    shown: Mapped[str] = mapped_column(Text, default="")  # the quote message the till got
    quoted_at: Mapped[datetime] = mapped_column(DateTime)
    # the redemption central confirmed online: its hold id and the points held
    hold_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    hold_points: Mapped[int] = mapped_column(BigInteger, default=0)


@dataclass(frozen=True)
class SavedSale:
    """An open sale as kept: its member (as the till was shown them), basket, redemption and
    the quote message the till got (JSON), made at ``quoted_at``; ``hold`` is the hold id
    and points of a redemption central confirmed online, if any."""

    pos_id: str
    txn_id: str
    member_id: str | None
    member_name: str
    member_balance: int
    lines: tuple[LineTuple, ...]
    redeem_points: int
    shown: str
    quoted_at: datetime
    hold: tuple[str, int] | None = None


class OpenSales:
    """Keeps :class:`SavedSale` rows in the terminal's database (the store's engine); each
    write is one ``BEGIN IMMEDIATE`` transaction, like every other write of the store, so it
    waits for the sync worker's lock instead of failing on it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def save(self, sale: SavedSale) -> None:
        """Insert or replace the sale's row."""
        values = {"pos_id": sale.pos_id, "txn_id": sale.txn_id, "member_id": sale.member_id,
                  "member_name": sale.member_name, "member_balance": sale.member_balance,
                  "lines": json.dumps([list(x) for x in sale.lines]),
                  "redeem_points": sale.redeem_points, "shown": sale.shown,
                  "quoted_at": sale.quoted_at,
                  "hold_id": sale.hold[0] if sale.hold else None,
                  "hold_points": sale.hold[1] if sale.hold else 0}
        stmt = sqlite_insert(OpenSale).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[OpenSale.pos_id, OpenSale.txn_id],
            set_={k: v for k, v in values.items() if k not in ("pos_id", "txn_id")})
        with write(self.engine, f"keeping open sale {sale.txn_id}") as conn:
            conn.execute(stmt)

    def drop(self, pos_id: str, txn_id: str) -> None:
        """Forget the sale (committed or voided); nothing happens if it was not kept."""
        with write(self.engine, f"dropping open sale {txn_id}") as conn:
            conn.execute(delete(OpenSale).where(OpenSale.pos_id == pos_id,
                                                OpenSale.txn_id == txn_id))

    def load(self, limit: int) -> list[SavedSale]:
        """The ``limit`` most recently quoted open sales, oldest first; older ones (sales a
        till abandoned without a void) are dropped."""
        with write(self.engine, "reading open sales") as conn:
            rows = conn.execute(select(OpenSale.__table__)
                                .order_by(OpenSale.quoted_at.desc())).all()
            for stale in rows[limit:]:
                conn.execute(delete(OpenSale).where(OpenSale.pos_id == stale.pos_id,
                                                    OpenSale.txn_id == stale.txn_id))
            return [SavedSale(r.pos_id, r.txn_id, r.member_id, r.member_name,
                              r.member_balance,
                              tuple((str(a), int(b), int(c), str(d))
                                    for a, b, c, d in json.loads(r.lines)),
                              r.redeem_points, r.shown, r.quoted_at,
                              (r.hold_id, int(r.hold_points)) if r.hold_id else None)
                    for r in reversed(rows[:limit])]
