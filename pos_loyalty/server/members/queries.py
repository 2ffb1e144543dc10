"""Members, their cards and tiers, as store IT manages them."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Connection, update

from pos_loyalty.server.db import Database
from pos_loyalty.store.central_models import Balance, Card, Member, Tier


def add_member(db: Database, member_id: str, display_name: str = "", *, card_id: str | None = None,
               uid: str | None = None, tier: str | None = None,
               birthday: date | None = None) -> None:
    def tx(conn: Connection) -> None:
        stamp = db.stamp(conn)
        stmt = db.insert(Member).values(
            member_id=member_id, display_name=display_name, tier=tier, birthday=birthday,
            status="active", change_xid=stamp)
        conn.execute(stmt.on_conflict_do_update(
            index_elements=[Member.member_id],
            set_={"display_name": display_name, "tier": tier, "birthday": birthday,
                  "change_xid": stamp}))
        conn.execute(db.insert(Balance).values(
            member_id=member_id, balance=0, change_xid=stamp
        ).on_conflict_do_nothing(index_elements=[Balance.member_id]))
        if card_id is not None:
            conn.execute(db.insert(Card).values(
                card_id=card_id, member_id=member_id, uid=uid.upper() if uid else None,
                status="active", change_xid=stamp))

    db.write(tx)


def set_card_status(db: Database, card_id: str, status: str) -> bool:
    """Revoke (or re-activate) a card; terminals learn it on their next pull."""
    def tx(conn: Connection) -> int:
        return conn.execute(update(Card).where(Card.card_id == card_id).values(
            status=status, change_xid=db.stamp(conn))).rowcount

    return db.write(tx) > 0


def set_tier(db: Database, tier_id: str, name: str, body: str = "{}") -> None:
    def tx(conn: Connection) -> None:
        stamp = db.stamp(conn)
        conn.execute(db.insert(Tier).values(
            tier_id=tier_id, name=name, body=body, change_xid=stamp
        ).on_conflict_do_update(index_elements=[Tier.tier_id],
                                set_={"name": name, "body": body, "change_xid": stamp}))

    db.write(tx)
