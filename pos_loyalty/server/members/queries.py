"""Members, their cards and tiers, as store IT manages them.

Every change stamps the rows it writes, so terminals learn it on their next pull. Points
only ever move through the ledger (:func:`pos_loyalty.server.ledger.queries.adjust_points`,
a merge's pair of adjustments), so a balance stays the sum of its applied ledger rows.

Search (:func:`search_members`) is what the console calls: three index range scans
(member id, card id, lower-cased name, each a prefix) merged, so it stays fast over
millions of members on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Select, func, select, update

from pos_loyalty.ids import uuid7
from pos_loyalty.server.db import Database, Refused
from pos_loyalty.server.ledger.queries import apply_deltas, central_event
from pos_loyalty.store.central_models import AuditEntry, Balance, Card, LedgerEvent, Member, Tier

MAX_ID = 64
ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
EXPORT_COLUMNS = ("member_id", "display_name", "email", "tier", "birthday", "status",
                  "anonymous", "balance", "cards")


class MemberError(Refused):
    """A member or card change store IT asked for that cannot be made (one clear line)."""


@dataclass(frozen=True)
class MemberRow:
    """One member as a list or a search shows it."""

    member_id: str
    display_name: str
    tier: str | None
    status: str
    anonymous: bool
    balance: int


@dataclass(frozen=True)
class CardRow:
    card_id: str
    uid: str | None
    status: str


@dataclass(frozen=True)
class HistoryRow:
    event_id: str
    kind: str
    points: int
    txn_ref: str
    terminal_id: str
    terminal_time: datetime
    status: str


@dataclass(frozen=True)
class MemberDetail:
    member_id: str
    display_name: str
    email: str
    tier: str | None
    birthday: date | None
    status: str
    anonymous: bool
    consent_at: datetime | None
    merged_into: str | None
    balance: int
    cards: list[CardRow] = field(default_factory=list)
    history: list[HistoryRow] = field(default_factory=list)


def check_id(value: str, what: str) -> str:
    """A member or card id as given, or MemberError naming what is wrong with it."""
    if not value or not value.strip():
        raise MemberError(f"{what} id is empty")
    if not ID_RE.fullmatch(value):
        raise MemberError(f"{what} id {value!r} must be 1-{MAX_ID} letters, digits or . _ : -")
    return value


def _row_cols() -> tuple[Any, ...]:
    return (Member.member_id, Member.display_name, Member.tier, Member.status,
            Member.anonymous, func.coalesce(Balance.balance, 0))


def _rows(stmt: Select[Any]) -> Select[Any]:
    return stmt.outerjoin(Balance, Balance.member_id == Member.member_id)


def _member_row(r: Any) -> MemberRow:
    return MemberRow(r[0], r[1], r[2], r[3], bool(r[4]), int(r[5]))


def _card_owner(conn: Connection, card_id: str) -> str | None:
    return conn.execute(select(Card.member_id).where(Card.card_id == card_id)).scalar()


def _uid_owner(conn: Connection, uid: str) -> str | None:
    return conn.execute(select(Card.card_id).where(Card.uid == uid)).scalar()


def _exists(conn: Connection, member_id: str) -> bool:
    return conn.execute(select(Member.member_id).where(
        Member.member_id == member_id)).first() is not None


def _checked_uid(conn: Connection, uid: str, card_id: str | None = None) -> str:
    """A card UID as stored (upper-case hex), refused when malformed or on another card
    than ``card_id``."""
    uid = uid.upper()
    if not re.fullmatch(r"[0-9A-F]{8,20}", uid):
        raise MemberError(f"card UID {uid!r} must be 8-20 hex digits")
    other = _uid_owner(conn, uid)
    if other not in (None, card_id):
        raise MemberError(f"UID {uid} is already on card {other}")
    return uid


def _issue_card(db: Database, conn: Connection, member_id: str, card_id: str,
                uid: str | None, stamp: Any) -> None:
    check_id(card_id, "card")
    owner = _card_owner(conn, card_id)
    if owner is not None:
        raise MemberError(f"card {card_id} already belongs to member {owner}")
    if uid:
        uid = _checked_uid(conn, uid)
    conn.execute(db.insert(Card).values(card_id=card_id, member_id=member_id, uid=uid or None,
                                        status="active", change_xid=stamp))


def add_member(db: Database, member_id: str, display_name: str = "", *,
               card_id: str | None = None, uid: str | None = None, tier: str | None = None,
               birthday: date | None = None, email: str = "",
               anonymous: bool = False) -> None:
    """Create a member (and its first card); MemberError if the id or the card is taken."""
    check_id(member_id, "member")

    def tx(conn: Connection) -> None:
        if _exists(conn, member_id):
            raise MemberError(f"member {member_id} already exists "
                              "(change it with `admin member update`)")
        stamp = db.stamp(conn)
        conn.execute(db.insert(Member).values(
            member_id=member_id, display_name=display_name, tier=tier or None,
            birthday=birthday, status="active", change_xid=stamp,
            name_key=display_name.lower(), email=email, anonymous=anonymous))
        conn.execute(db.insert(Balance).values(
            member_id=member_id, balance=0, change_xid=stamp
        ).on_conflict_do_nothing(index_elements=[Balance.member_id]))
        if card_id is not None:
            _issue_card(db, conn, member_id, card_id, uid, stamp)

    db.write(tx)


_UNSET: Any = object()


def update_member(db: Database, member_id: str, *, display_name: str | None = None,
                  tier: str | None = _UNSET, birthday: date | None = _UNSET,
                  email: str | None = None, consent: bool | None = None) -> MemberDetail:
    """Change only the fields given (``tier=None`` clears the tier); the rest stay.

    Giving a name or consent to an anonymous member claims it.
    """
    values: dict[str, Any] = {}
    if display_name is not None:
        values.update(display_name=display_name, name_key=display_name.lower())
    if tier is not _UNSET:
        values["tier"] = tier or None
    if birthday is not _UNSET:
        values["birthday"] = birthday
    if email is not None:
        values["email"] = email
    if consent is not None:
        values["consent_at"] = db.clock() if consent else None
    if not values:
        raise MemberError("nothing to change: give at least one field")
    if display_name or consent:
        values["anonymous"] = False

    def tx(conn: Connection) -> None:
        values["change_xid"] = db.stamp(conn)
        done = conn.execute(update(Member).where(Member.member_id == member_id)
                            .values(values)).rowcount
        if not done:
            raise MemberError(f"no member {member_id}", status=404)

    db.write(tx)
    return get_member(db, member_id)


def get_member(db: Database, member_id: str, *, history: int = 20) -> MemberDetail:
    """A member with its balance, cards and latest ledger rows; MemberError if unknown."""
    with db.read() as conn:
        m = conn.execute(select(
            Member.member_id, Member.display_name, Member.email, Member.tier, Member.birthday,
            Member.status, Member.anonymous, Member.consent_at, Member.merged_into,
            func.coalesce(Balance.balance, 0)).outerjoin(
            Balance, Balance.member_id == Member.member_id).where(
            Member.member_id == member_id)).first()
        if m is None:
            raise MemberError(f"no member {member_id}", status=404)
        cards = [CardRow(*c) for c in conn.execute(
            select(Card.card_id, Card.uid, Card.status).where(Card.member_id == member_id)
            .order_by(Card.card_id))]
        rows = [HistoryRow(*h) for h in conn.execute(
            select(LedgerEvent.event_id, LedgerEvent.kind, LedgerEvent.points,
                   LedgerEvent.txn_ref, LedgerEvent.terminal_id, LedgerEvent.terminal_time,
                   LedgerEvent.status).where(LedgerEvent.member_id == member_id)
            .order_by(LedgerEvent.received_at.desc(), LedgerEvent.event_id.desc())
            .limit(history))]
    return MemberDetail(m[0], m[1], m[2], m[3], m[4], m[5], bool(m[6]), m[7], m[8], int(m[9]),
                        cards, rows)


def search_members(db: Database, query: str, *, limit: int = 20) -> list[MemberRow]:
    """Members whose id, card id or name starts with ``query`` (name case-insensitive),
    by member id. Each part is an index range scan, so 1M members cost no more than 1k."""
    q = query.strip()
    if not q:
        return []
    limit = max(1, min(limit, 200))
    low = q.lower()

    def by_prefix(key: Any, col: Any, text: str) -> set[str]:
        # byte order (COLLATE "C" on PostgreSQL, served by c0004's indexes; SQLite compares
        # bytes already), so [text, text + U+10FFFF) is exactly the strings starting with text
        if db.is_pg:
            col = col.collate("C")
        stmt = select(key).where(col >= text, col < text + "\U0010ffff")
        return set(conn.execute(stmt.order_by(col).limit(limit)).scalars())

    with db.read() as conn:
        ids = by_prefix(Member.member_id, Member.member_id, q)
        ids |= by_prefix(Card.member_id, Card.card_id, q)
        ids |= by_prefix(Member.member_id, Member.name_key, low)
        if not ids:
            return []
        found = conn.execute(_rows(select(*_row_cols())).where(
            Member.member_id.in_(sorted(ids))).order_by(Member.member_id).limit(limit)).all()
    return [_member_row(r) for r in found]


def list_members(db: Database, *, after: str = "", limit: int = 100,
                 status: str | None = None, anonymous: bool | None = None) -> list[MemberRow]:
    """A page of members in id order after ``after`` (keyset paging, no OFFSET)."""
    stmt = _rows(select(*_row_cols())).where(Member.member_id > after)
    if status is not None:
        stmt = stmt.where(Member.status == status)
    if anonymous is not None:
        stmt = stmt.where(Member.anonymous.is_(anonymous))
    with db.read() as conn:
        rows = conn.execute(stmt.order_by(Member.member_id).limit(limit)).all()
    return [_member_row(r) for r in rows]


def export_members(db: Database, *, page: int = 5000) -> Iterator[list[str]]:
    """Every member as CSV fields (:data:`EXPORT_COLUMNS`), in id order, page by page."""
    after = ""
    while True:
        with db.read() as conn:
            rows = conn.execute(select(
                Member.member_id, Member.display_name, Member.email, Member.tier,
                Member.birthday, Member.status, Member.anonymous,
                func.coalesce(Balance.balance, 0)).outerjoin(
                Balance, Balance.member_id == Member.member_id).where(
                Member.member_id > after).order_by(Member.member_id).limit(page)).all()
            if not rows:
                return
            ids = [r[0] for r in rows]
            cards: dict[str, list[str]] = {}
            for mid, cid in conn.execute(select(Card.member_id, Card.card_id).where(
                    Card.member_id.in_(ids), Card.status == "active").order_by(Card.card_id)):
                cards.setdefault(mid, []).append(cid)
        for r in rows:
            yield [r[0], r[1], r[2], r[3] or "", r[4].isoformat() if r[4] else "", r[5],
                   "yes" if r[6] else "no", str(int(r[7])), " ".join(cards.get(r[0], []))]
        after = rows[-1][0]


@dataclass(frozen=True)
class ImportRow:
    line: int
    member_id: str
    fields: dict[str, Any]
    card_id: str | None


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int


def parse_import(text: str, source: str = "members.csv") -> list[ImportRow]:
    """Rows of a members CSV (header row; ``member_id`` required; ``display_name``,
    ``email``, ``tier``, ``birthday`` (YYYY-MM-DD), ``card_id`` optional). A bad row, or bad
    CSV, raises MemberError naming file and line; nothing is written until every row is good.
    """
    try:
        return _parse_import(text, source)
    except csv.Error as exc:
        raise MemberError(f"{source}: line {_csv_line(text)}: {exc}",
                          status=422) from exc


def _csv_line(text: str) -> int:
    """The line the csv module stops on in ``text``."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for _ in reader:
            pass
    except csv.Error:
        return reader.line_num
    return reader.line_num


def _parse_import(text: str, source: str) -> list[ImportRow]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if reader.fieldnames is None or "member_id" not in reader.fieldnames:
        raise MemberError(f"{source}: line 1: the header must name a member_id column")
    known = {"member_id", "display_name", "email", "tier", "birthday", "card_id"}
    extra = [f for f in reader.fieldnames if f not in known and f not in EXPORT_COLUMNS]
    if extra:
        raise MemberError(f"{source}: line 1: unknown column {extra[0]!r}")
    out: list[ImportRow] = []
    seen: dict[str, int] = {}
    for rec in reader:
        line = reader.line_num
        mid = (rec.get("member_id") or "").strip()
        try:
            check_id(mid, "member")
            if mid in seen:
                raise MemberError(f"member {mid} repeated (first on line {seen[mid]})")
            seen[mid] = line
            fields: dict[str, Any] = {}
            for key in ("display_name", "email", "tier"):
                if rec.get(key) is not None:
                    fields[key] = rec[key].strip()
            if rec.get("birthday"):
                try:
                    fields["birthday"] = date.fromisoformat(rec["birthday"].strip())
                except ValueError as exc:
                    raise MemberError(f"birthday {rec['birthday']!r} is not YYYY-MM-DD") from exc
            card = (rec.get("card_id") or "").strip() or None
            if card is not None:
                check_id(card, "card")
        except MemberError as exc:
            raise MemberError(f"{source}: line {line}: {exc}") from exc
        out.append(ImportRow(line, mid, fields, card))
    return out


def import_members(db: Database, rows: Iterable[ImportRow], *, source: str = "members.csv",
                   chunk: int = 2000) -> ImportResult:
    """Create new members, update only the given fields of known ones, issue new cards.
    Each chunk is one transaction; a card taken by another member stops the import there
    with its line (earlier chunks stay written, so re-running the fixed file is safe)."""
    created = updated = 0
    batch: list[ImportRow] = []

    def flush(part: list[ImportRow]) -> tuple[int, int]:
        def tx(conn: Connection) -> tuple[int, int]:
            stamp = db.stamp(conn)
            known = set(conn.execute(select(Member.member_id).where(
                Member.member_id.in_([r.member_id for r in part]))).scalars())
            c = u = 0
            for r in part:
                f = dict(r.fields)
                if "display_name" in f:
                    f["name_key"] = f["display_name"].lower()
                    if f["display_name"]:
                        f["anonymous"] = False
                if "tier" in f:
                    f["tier"] = f["tier"] or None
                if r.member_id in known:
                    if f:
                        conn.execute(update(Member).where(Member.member_id == r.member_id)
                                     .values(change_xid=stamp, **f))
                    u += 1
                else:
                    conn.execute(db.insert(Member).values(
                        member_id=r.member_id, status="active", change_xid=stamp,
                        **{"display_name": "", "name_key": "", **f}))
                    conn.execute(db.insert(Balance).values(
                        member_id=r.member_id, balance=0, change_xid=stamp
                    ).on_conflict_do_nothing(index_elements=[Balance.member_id]))
                    known.add(r.member_id)
                    c += 1
                if r.card_id is not None:
                    owner = _card_owner(conn, r.card_id)
                    if owner is None:
                        _issue_card(db, conn, r.member_id, r.card_id, None, stamp)
                    elif owner != r.member_id:
                        raise MemberError(f"{source}: line {r.line}: card {r.card_id} "
                                          f"already belongs to member {owner}")
            return c, u

        return db.write(tx)

    for r in rows:
        batch.append(r)
        if len(batch) >= chunk:
            c, u = flush(batch)
            created, updated, batch = created + c, updated + u, []
    if batch:
        c, u = flush(batch)
        created, updated = created + c, updated + u
    return ImportResult(created, updated)


def set_card_status(db: Database, card_id: str, status: str) -> bool:
    """Revoke, block (or re-activate) a card; terminals learn it on their next pull."""
    def tx(conn: Connection) -> int:
        return conn.execute(update(Card).where(Card.card_id == card_id).values(
            status=status, change_xid=db.stamp(conn))).rowcount

    return db.write(tx) > 0


def issue_card(db: Database, member_id: str, card_id: str, *, uid: str | None = None,
               replaces: str | None = None, move: bool = False,
               actor: str = "") -> str | None:
    """Give a member a new card; with ``replaces``, block that (lost) card in the same
    transaction. The balance belongs to the member, so the new card carries it.

    A card another member holds is refused, naming that member, unless ``move``: then it
    moves to ``member_id`` (active again, its UID kept unless ``uid`` is given; the points
    stay with the member who earned them) and the move is written to the audit log with
    ``actor`` in the same transaction. Returns the member it was moved from, if it was.
    """
    def tx(conn: Connection) -> str | None:
        if not _exists(conn, member_id):
            raise MemberError(f"no member {member_id}", status=404)
        holder = _card_owner(conn, card_id)
        if holder == member_id:
            raise MemberError(f"card {card_id} already belongs to member {member_id}")
        if holder is not None and not move:
            hint = "" if replaces else f"; to give it to {member_id}, issue it with --move"
            raise MemberError(f"card {card_id} already belongs to member {holder}{hint}")
        stamp = db.stamp(conn)
        if holder is not None:
            old = conn.execute(select(Card.uid, Card.status).where(
                Card.card_id == card_id)).one()
            values: dict[str, Any] = {"member_id": member_id, "status": "active",
                                      "change_xid": stamp}
            if uid:
                values["uid"] = _checked_uid(conn, uid, card_id)
            conn.execute(update(Card).where(Card.card_id == card_id).values(values))
            conn.execute(db.insert(AuditEntry).values(
                audit_id=str(uuid7()), at=db.clock(), actor=(actor or "unknown")[:64],
                action="card.move", target=f"card {card_id}"[:200], store_id=None,
                before=json.dumps({"member_id": holder, "uid": old.uid,
                                   "status": old.status}),
                after=json.dumps({"member_id": member_id,
                                  "uid": values.get("uid", old.uid), "status": "active"})))
            return holder
        if replaces is not None:
            owner = _card_owner(conn, replaces)
            if owner != member_id:
                raise MemberError(f"card {replaces} is not a card of member {member_id}")
            conn.execute(update(Card).where(Card.card_id == replaces).values(
                status="blocked", change_xid=stamp))
        _issue_card(db, conn, member_id, card_id, uid, stamp)
        return None

    return db.write(tx)


def replace_card(db: Database, card_id: str, new_card_id: str, *,
                 uid: str | None = None) -> str:
    """Block a lost card and issue its member ``new_card_id``; returns the member id."""
    with db.read() as conn:
        owner = _card_owner(conn, card_id)
    if owner is None:
        raise MemberError(f"no card {card_id}", status=404)
    issue_card(db, owner, new_card_id, uid=uid, replaces=card_id)
    return owner


def issue_blank_cards(db: Database, card_ids: Iterable[str]) -> int:
    """Card-first membership: each blank card gets an anonymous member of its own
    (``A-<card id>``), so the card earns at any terminal from its first tap and store IT
    claims it later (name, consent) with :func:`update_member`."""
    ids = [check_id(c, "card") for c in card_ids]

    def tx(conn: Connection) -> int:
        stamp = db.stamp(conn)
        for cid in ids:
            mid = check_id(f"A-{cid}"[:MAX_ID], "member")
            if _exists(conn, mid):
                raise MemberError(f"member {mid} already exists")
            conn.execute(db.insert(Member).values(
                member_id=mid, display_name="", name_key="", status="active",
                anonymous=True, change_xid=stamp))
            conn.execute(db.insert(Balance).values(member_id=mid, balance=0,
                                                   change_xid=stamp))
            _issue_card(db, conn, mid, cid, None, stamp)
        return len(ids)

    return db.write(tx)


def merge_members(db: Database, source: str, target: str, *, actor: str = "") -> int:
    """Fold ``source`` into ``target``: its cards move over, its balance moves by a pair of
    central adjustments (so both balances stay sums of their ledgers), and it is marked
    merged. Returns the points moved."""
    if source == target:
        raise MemberError("cannot merge a member into itself")
    now = db.clock()

    def tx(conn: Connection) -> int:
        rows = {r[0]: r[1] for r in conn.execute(select(Member.member_id, Member.status).where(
            Member.member_id.in_([source, target])))}
        for m in (source, target):
            if m not in rows:
                raise MemberError(f"no member {m}", status=404)
            if rows[m] == "merged":
                raise MemberError(f"member {m} was already merged")
        stamp = db.stamp(conn)
        points = int(conn.execute(select(Balance.balance).where(
            Balance.member_id == source).with_for_update()).scalar() or 0)
        conn.execute(update(Card).where(Card.member_id == source).values(
            member_id=target, change_xid=stamp))
        conn.execute(update(Member).where(Member.member_id == source).values(
            status="merged", merged_into=target, change_xid=stamp))
        if points:
            note = f"by {actor}" if actor else ""
            conn.execute(db.insert(LedgerEvent), [
                central_event(source, -points, f"merged into {target}", now, note),
                central_event(target, points, f"merged from {source}", now, note)])
            apply_deltas(db, conn, {source: -points, target: points})
        return points

    return db.write(tx)


def set_tier(db: Database, tier_id: str, name: str, body: str = "{}") -> None:
    def tx(conn: Connection) -> None:
        stamp = db.stamp(conn)
        conn.execute(db.insert(Tier).values(
            tier_id=tier_id, name=name, body=body, change_xid=stamp
        ).on_conflict_do_update(index_elements=[Tier.tier_id],
                                set_={"name": name, "body": body, "change_xid": stamp}))

    db.write(tx)

