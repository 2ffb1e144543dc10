"""The tap path: find the member behind a card, fast, on the till worker's own connection.

This is the one read a cashier waits for (P1/P3 in the architecture targets), so it skips
SQLAlchemy's execute machinery (~0.5 ms a call, ten times the lookup itself): the SQL is
compiled once and run on a per-thread DBAPI connection. bench/bench_lookup.py measures it
against a bare sqlite3 lookup.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Engine, bindparam, select
from sqlalchemy.exc import SQLAlchemyError

from pos_loyalty.errors import StoreError
from pos_loyalty.store.models import Card, CashierLine, Member


@dataclass(frozen=True)
class LineFacts:
    """What the tap needs for the cashier's line: central's line, whether the birthday rule
    is on, and the member's birthday (month and day; the year is not central's)."""

    line: str
    birthday_rule: bool
    birthday: date | None


@dataclass(frozen=True)
class MemberRecord:
    """A member as the till needs to see them, found by card."""

    member_id: str
    display_name: str
    tier: str | None
    balance: int
    lifetime_spend: int
    visits: int
    card_id: str
    card_status: str
    line: LineFacts | None = None  # None: central sent no cashier's line for this member


def _compiled(engine: Engine, by: Any) -> str:
    stmt = select(
        Member.member_id, Member.display_name, Member.tier, Member.balance,
        Member.lifetime_spend, Member.visits, Card.card_id, Card.status,
        CashierLine.member_id, CashierLine.line, CashierLine.birthday, Member.birthday,
    ).join(Card, Card.member_id == Member.member_id).outerjoin(
        CashierLine, CashierLine.member_id == Member.member_id).where(by == bindparam("key"))
    return str(stmt.compile(dialect=engine.dialect))


def _line_facts(has_line: Any, line: Any, rule: Any, born: Any) -> LineFacts | None:
    """The cashier's line columns of a lookup row (the member's birthday as SQLite keeps it,
    an ISO date; anything else is no birthday)."""
    if has_line is None:
        return None
    try:
        birthday = date.fromisoformat(str(born)[:10]) if born else None
    except ValueError:
        birthday = None
    return LineFacts(str(line or ""), bool(rule), birthday)


class TapLookup:
    """Member by card number or by UID; one raw connection per calling thread."""

    engine: Engine

    def _init_lookup(self) -> None:
        self._local = threading.local()
        self._by_card = _compiled(self.engine, Card.card_id)
        self._by_uid = _compiled(self.engine, Card.uid)

    def find_by_card(self, card_id: str) -> MemberRecord | None:
        """The member holding this card number, or None."""
        return self._find(self._by_card, card_id)

    def find_by_uid(self, uid: str) -> MemberRecord | None:
        """The member whose card has this UID (legacy UID-only cards), or None."""
        return self._find(self._by_uid, uid.upper())

    def _find(self, sql: str, key: str) -> MemberRecord | None:
        conn = getattr(self._local, "conn", None)
        try:
            if conn is None:
                conn = self._local.conn = self.engine.raw_connection()
            row = conn.cursor().execute(sql, (key,)).fetchone()
        except (sqlite3.Error, SQLAlchemyError) as exc:  # the latter: a failed connect
            raise StoreError(f"member lookup failed: {exc}") from exc
        if row is None:
            return None
        return MemberRecord(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7],
                            _line_facts(row[8], row[9], row[10], row[11]))

    def _close_lookup(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
