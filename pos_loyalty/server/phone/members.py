"""The member's own page: who may open it, and what it shows.

A member opens it with something only they hold: the card number printed on their card
(failures throttled per client), or a fresh tap of their NTAG 424 DNA card (a SUN URL whose
counter is new for the chain). Either starts a session (random token in an HttpOnly cookie,
stored hashed, 30 minutes). The page shows the member's balance, tier, points about to
expire and recent activity;
nothing personal is shown on product pages.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Connection, delete, func, select, update

from pos_loyalty.errors import ConfigError
from pos_loyalty.rules.expiry import expiry_status
from pos_loyalty.rules.model import MemberView as RulesMember
from pos_loyalty.rules.model import PointsLot
from pos_loyalty.rules.parse import parse_program
from pos_loyalty.server.db import Database
from pos_loyalty.server.phone.queries import token_hash
from pos_loyalty.store.central_models import (
    Balance,
    Card,
    LedgerEvent,
    Member,
    MemberPageSession,
    PhoneRegistration,
    PhoneTagLink,
    Tier,
)
from pos_loyalty.store.central_models import Program as ProgramRow
from pos_loyalty.web import csrf

SESSION_S = 30 * 60
RECENT = 10


@dataclass(frozen=True)
class MemberSession:
    member_id: str
    csrf_secret: str


@dataclass(frozen=True)
class Activity:
    at: datetime
    kind: str
    points: int
    store_id: str


@dataclass(frozen=True)
class MemberView:
    balance: int
    tier: str | None
    recent: tuple[Activity, ...]
    expiring: int = 0  # points whose last day is within the program's warning period
    expiring_on: date | None = None
    products: tuple[tuple[str, bool], ...] = ()  # (SKU, warranty registered) bought here
    next_reward: str | None = None  # the cheapest reward the balance does not reach yet
    points_to_next: int = 0
    anonymous: bool = False  # a card-first member nobody has claimed yet


@dataclass(frozen=True)
class _ProgramFacts:
    expiring: int = 0
    expiring_on: date | None = None
    next_reward: str | None = None
    points_to_next: int = 0


def _program_facts(conn: Connection, member_id: str, balance: int,
                   today: date) -> _ProgramFacts:
    """Points soon to expire and the next reward, under the chain-wide program
    (``store_id`` NULL), if any.

    The rules engine's own expiry (newest lots hold the balance) and redemption terms; a
    program central cannot parse shows nothing rather than a wrong figure.
    """
    body = conn.execute(select(ProgramRow.body).where(ProgramRow.store_id.is_(None))
                        .order_by(ProgramRow.program_id).limit(1)).scalar()
    if not body:
        return _ProgramFacts()
    try:
        program = parse_program(body)
    except ConfigError:
        return _ProgramFacts()
    rewards = []
    if program.redemption is not None:
        rewards = [(item.points, item.text) for item in program.redemption.catalog]
        if program.redemption.min_points > 0:
            rewards.append((program.redemption.min_points, ""))  # money off
    ahead = sorted(r for r in rewards if r[0] > balance)
    reward, missing = (ahead[0][1], ahead[0][0] - balance) if ahead else (None, 0)
    if program.expiry.mode == "none":
        return _ProgramFacts(next_reward=reward, points_to_next=missing)
    lots = conn.execute(
        select(func.date(LedgerEvent.terminal_time), func.sum(LedgerEvent.points))
        .where(LedgerEvent.member_id == member_id, LedgerEvent.status == "applied",
               LedgerEvent.kind == "earn", LedgerEvent.points > 0)
        .group_by(func.date(LedgerEvent.terminal_time))).all()
    view = RulesMember(member_id, balance=balance, lots=tuple(
        PointsLot(d if isinstance(d, date) else date.fromisoformat(str(d)), int(p))
        for d, p in lots))
    _expired, soon, first = expiry_status(view, today, program)
    return _ProgramFacts(soon, first, reward, missing)


def member_by_card(db: Database, card_id: str) -> str | None:
    """The active member holding this active card, if any."""
    with db.read() as conn:
        return conn.execute(
            select(Card.member_id).join(Member, Member.member_id == Card.member_id)
            .where(Card.card_id == card_id, Card.status == "active",
                   Member.status == "active")).scalar()


def member_by_card_tap(db: Database, uid: str, counter: int,
                       card_id: str | None) -> str | bool | None:
    """The member of a verified SUN card tap whose counter is fresh (raised here), None
    for no active member with that card, False for a replayed read."""
    from pos_loyalty.server.phone.queries import raise_counter

    def tx(conn: Connection) -> str | bool | None:
        if not raise_counter(db, conn, uid, counter, db.clock()):
            return False
        where = Card.card_id == card_id if card_id else Card.uid == uid
        found: str | None = conn.execute(
            select(Card.member_id).join(Member, Member.member_id == Card.member_id)
            .where(where, Card.status == "active", Member.status == "active")).scalar()
        return found

    return db.write(tx)


def claim(db: Database, member_id: str, name: str, email: str) -> bool:
    """The holder of a card-first (anonymous) card makes it theirs: name, e-mail (may be
    empty) and consent, in one conditional update; False when it was claimed already
    (nothing changes: a member's details are never overwritten from this page). The search
    key is cut to its column: lower() can lengthen a name ("İ" is two characters lower)."""
    now = db.clock()

    def tx(conn: Connection) -> bool:
        done = conn.execute(update(Member).where(
            Member.member_id == member_id, Member.anonymous.is_(True),
            Member.status == "active").values(
            display_name=name, name_key=name.lower()[:200], email=email, consent_at=now,
            anonymous=False, change_xid=db.stamp(conn))).rowcount
        return bool(done)

    return db.write(tx)


def start_session(db: Database, member_id: str) -> tuple[str, datetime]:
    """A new session for ``member_id``: (cookie token, expiry). Expired ones are dropped."""
    token = secrets.token_urlsafe(32)
    now = db.clock()
    expires = now + timedelta(seconds=SESSION_S)

    def tx(conn: Connection) -> None:
        conn.execute(delete(MemberPageSession).where(MemberPageSession.expires_at < now))
        conn.execute(db.insert(MemberPageSession).values(
            token_hash=token_hash(token), member_id=member_id, csrf_secret=csrf.new_secret(),
            expires_at=expires))

    db.write(tx)
    return token, expires


def session(db: Database, token: str | None) -> MemberSession | None:
    if not token or len(token) > 100:
        return None
    with db.read() as conn:
        row = conn.execute(select(MemberPageSession.member_id, MemberPageSession.csrf_secret,
                                  MemberPageSession.expires_at)
                           .where(MemberPageSession.token_hash == token_hash(token))).first()
    if row is None or row.expires_at <= db.clock():
        return None
    return MemberSession(row.member_id, row.csrf_secret)


def end_session(db: Database, token: str) -> None:
    db.write(lambda conn: conn.execute(
        delete(MemberPageSession).where(MemberPageSession.token_hash == token_hash(token))))


def member_view(db: Database, member_id: str) -> MemberView:
    """Balance, tier name and the last applied ledger rows of one member."""
    with db.read() as conn:
        balance = conn.execute(select(Balance.balance)
                               .where(Balance.member_id == member_id)).scalar()
        tier = conn.execute(select(Tier.name, Member.tier, Member.anonymous)
                            .select_from(Member)
                            .outerjoin(Tier, Tier.tier_id == Member.tier)
                            .where(Member.member_id == member_id)).first()
        rows = conn.execute(
            select(LedgerEvent.terminal_time, LedgerEvent.kind, LedgerEvent.points,
                   LedgerEvent.store_id)
            .where(LedgerEvent.member_id == member_id, LedgerEvent.status == "applied")
            .order_by(LedgerEvent.terminal_time.desc()).limit(RECENT)).all()
        facts = _program_facts(conn, member_id, int(balance or 0), db.clock().date())
        products = conn.execute(
            select(PhoneTagLink.sku, PhoneRegistration.uid.is_not(None))
            .outerjoin(PhoneRegistration, PhoneRegistration.uid == PhoneTagLink.uid)
            .where(PhoneTagLink.member_id == member_id)
            .order_by(PhoneTagLink.linked_at.desc()).limit(RECENT)).all()
    tier_name = (tier[0] or tier[1]) if tier is not None else None
    return MemberView(int(balance or 0), tier_name,
                      tuple(Activity(r[0], r[1], int(r[2]), r[3]) for r in rows),
                      facts.expiring, facts.expiring_on,
                      tuple((p[0], bool(p[1])) for p in products),
                      facts.next_reward, facts.points_to_next,
                      bool(tier[2]) if tier is not None else False)
