"""Write a generated chain (:mod:`pos_loyalty.insight.chain`) into a central database in bulk:
COPY on PostgreSQL, executemany on SQLite, all in one transaction (all or nothing)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, func, select, text

from pos_loyalty.insight.chain import COLUMNS, ChainSpec, Rows, generate
from pos_loyalty.server.db import Database, Refused
from pos_loyalty.store.central_models import Member, SaleRecord

Progress = Callable[[dict[str, int]], None]


def write_chain(db: Database, spec: ChainSpec, progress: Progress | None = None
                ) -> dict[str, int]:
    """Generate and store the chain; rows written per table. Refuses a database that
    already holds members or sales (a generated chain never mixes with real data)."""
    def tx(conn: Connection) -> dict[str, int]:
        for model, what in ((Member, "members"), (SaleRecord, "sales")):
            if conn.execute(select(func.count()).select_from(model)).scalar_one():
                raise Refused(f"the database already holds {what}: generate a chain into "
                              "an empty central database", status=409)
        stamp = (int(conn.execute(text("SELECT pg_current_xact_id()::text::bigint"))
                     .scalar_one()) if db.is_pg else int(db.stamp(conn)))
        counts = dict.fromkeys(COLUMNS, 0)
        for rows in generate(replace(spec, change_xid=stamp)):
            _write(db, conn, rows)
            for name, got in rows.items():
                counts[name] += len(got)
            if progress is not None:
                progress(counts)
        return counts

    return db.write(tx, attempts=1)


def _write(db: Database, conn: Connection, rows: Rows) -> None:
    for table, columns in COLUMNS.items():
        got = rows.get(table)
        if not got:
            continue
        if db.is_pg:
            _copy(conn, table, columns, got)
        else:
            marks = ", ".join("?" for _ in columns)
            conn.exec_driver_sql(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", got)


def _copy(conn: Connection, table: str, columns: tuple[str, ...],
          rows: list[tuple[Any, ...]]) -> None:
    import psycopg

    raw: psycopg.Connection[Any] = conn.connection.driver_connection  # type: ignore[assignment]
    with raw.cursor() as cur, cur.copy(
            f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
