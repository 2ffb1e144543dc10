"""Loyalty programs, per store or chain-wide, as terminals pull them."""

from __future__ import annotations

from sqlalchemy import Connection

from pos_loyalty.server.db import Database
from pos_loyalty.store.central_models import Program


def set_program(db: Database, program_id: str, name: str, body: str, *,
                store_id: str | None = None) -> None:
    def tx(conn: Connection) -> None:
        stamp = db.stamp(conn)
        conn.execute(db.insert(Program).values(
            program_id=program_id, store_id=store_id, name=name, body=body, version=1,
            change_xid=stamp,
        ).on_conflict_do_update(index_elements=[Program.program_id], set_={
            "name": name, "body": body, "store_id": store_id,
            "version": Program.version + 1, "change_xid": stamp}))

    db.write(tx)
