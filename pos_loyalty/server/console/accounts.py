"""Console accounts, their roles and stores, signed-in sessions, and the audit log.

Roles: ``admin`` changes anything; ``manager`` sees and changes only the stores given to
them (their terminals, held events) and works on members; ``readonly`` sees everything and
changes nothing. A session is a random token in an HttpOnly cookie; the database keeps only
its SHA-256, the user, the session's CSRF secret and its idle and absolute deadlines.
Every change made through the console or ``pos-loyalty admin user`` is written to the audit
log with who, what, when, and the state before and after.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection, delete, insert, select, update

from pos_loyalty.errors import LoyaltyError
from pos_loyalty.ids import uuid7
from pos_loyalty.server.console import passwords
from pos_loyalty.server.db import Database
from pos_loyalty.store.central_models import (
    AuditEntry,
    ConsoleSession,
    ConsoleUser,
    ConsoleUserStore,
)
from pos_loyalty.web import csrf

T = TypeVar("T")

ROLES = ("admin", "manager", "readonly")
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")
IDLE = timedelta(hours=1)
ABSOLUTE = timedelta(hours=12)
TOUCH_EVERY = timedelta(minutes=1)  # last_seen is written at most this often per session


class AccountError(LoyaltyError):
    """A console account cannot be made or changed as asked; the message says why."""


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is acting, and what they may see and change."""

    username: str
    display_name: str
    role: str
    stores: frozenset[str] = frozenset()

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def sees_all_stores(self) -> bool:
        return self.role in ("admin", "readonly")

    @property
    def can_change_members(self) -> bool:
        return self.role in ("admin", "manager")

    def can_see_store(self, store_id: str) -> bool:
        return self.sees_all_stores or store_id in self.stores

    def can_change_store(self, store_id: str) -> bool:
        return self.is_admin or (self.role == "manager" and store_id in self.stores)

    def visible(self, store_ids: Sequence[str]) -> list[str]:
        return [s for s in store_ids if self.can_see_store(s)]


@dataclass(frozen=True)
class Session:
    principal: Principal
    csrf_secret: str
    token_hash: str
    expires_at: datetime


@dataclass(frozen=True)
class UserRow:
    username: str
    display_name: str
    role: str
    active: bool
    stores: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True)
class AuditRow:
    audit_id: str
    at: datetime
    actor: str
    action: str
    target: str
    store_id: str | None
    before: str
    after: str


def validate_username(username: str) -> str:
    name = username.strip().lower()
    if not USERNAME.match(name):
        raise AccountError("a user name is 1 to 64 characters: letters, digits, '.', '_', "
                           "'@' or '-', starting with a letter or digit")
    return name


def _json(value: Any) -> str:
    return "" if value is None else json.dumps(value, sort_keys=True, default=str)


class ConsoleAccounts:
    """Users, sessions and the audit log, on the central database."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] | None = None) -> None:
        self.db = db
        self.engine = db.engine
        self.clock = clock or db.clock

    def _read(self) -> AbstractContextManager[Connection]:
        return self.db.read()

    def _write(self, fn: Callable[[Connection], T]) -> T:
        return self.db.write(fn)

    # -- audit ------------------------------------------------------------------------------

    def _audit(self, conn: Connection, actor: str, action: str, target: str,
               store_id: str | None, before: Any, after: Any) -> None:
        conn.execute(insert(AuditEntry).values(
            audit_id=str(uuid7()), at=self.clock(), actor=actor, action=action,
            target=target[:200], store_id=store_id, before=_json(before), after=_json(after)))

    def audit(self, actor: str, action: str, target: str, *, store_id: str | None = None,
              before: Any = None, after: Any = None) -> None:
        """Record one change (``before``/``after`` are kept as JSON)."""
        self._write(lambda conn: self._audit(conn, actor, action, target, store_id,
                                             before, after))

    def audit_log(self, principal: Principal, *, limit: int = 100,
                  before_id: str | None = None) -> list[AuditRow]:
        """Newest first; a manager sees the entries of their stores only."""
        stmt = select(AuditEntry.audit_id, AuditEntry.at, AuditEntry.actor, AuditEntry.action,
                      AuditEntry.target, AuditEntry.store_id, AuditEntry.before,
                      AuditEntry.after)
        if not principal.sees_all_stores:
            stmt = stmt.where(AuditEntry.store_id.in_(sorted(principal.stores)))
        if before_id:
            stmt = stmt.where(AuditEntry.audit_id < before_id)
        with self._read() as conn:
            rows = conn.execute(stmt.order_by(AuditEntry.audit_id.desc()).limit(limit)).all()
        return [AuditRow(*r) for r in rows]

    # -- users ------------------------------------------------------------------------------

    def add_user(self, username: str, password: str, role: str, *, actor: str,
                 stores: Sequence[str] = (), display_name: str = "") -> UserRow:
        """Create an account; AccountError for a bad name, role, password or a taken name."""
        name = validate_username(username)
        if role not in ROLES:
            raise AccountError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        weak = passwords.check_strength(password)
        if weak:
            raise AccountError(weak)
        wanted = sorted({s.strip() for s in stores if s.strip()})
        if role == "manager" and not wanted:
            raise AccountError("a store manager needs at least one store")
        if role != "manager" and wanted:
            raise AccountError("only a store manager is limited to stores")
        hashed = passwords.hash_password(password)
        now = self.clock()

        def tx(conn: Connection) -> None:
            taken = conn.execute(select(ConsoleUser.username).where(
                ConsoleUser.username == name)).first()
            if taken is not None:
                raise AccountError(f"user {name} already exists")
            conn.execute(insert(ConsoleUser).values(
                username=name, display_name=display_name.strip()[:200], password_hash=hashed,
                role=role, active=True, created_at=now))
            for s in wanted:
                conn.execute(insert(ConsoleUserStore).values(username=name, store_id=s))
            self._audit(conn, actor, "user.add", name, None, None,
                        {"role": role, "stores": wanted, "display_name": display_name})

        self._write(tx)
        return UserRow(name, display_name, role, True, tuple(wanted), now)

    def users(self) -> list[UserRow]:
        with self._read() as conn:
            users = conn.execute(select(
                ConsoleUser.username, ConsoleUser.display_name, ConsoleUser.role,
                ConsoleUser.active, ConsoleUser.created_at).order_by(ConsoleUser.username)).all()
            stores: dict[str, list[str]] = {}
            for u, s in conn.execute(select(ConsoleUserStore.username,
                                            ConsoleUserStore.store_id)
                                     .order_by(ConsoleUserStore.store_id)):
                stores.setdefault(u, []).append(s)
            return [UserRow(u.username, u.display_name, u.role, u.active,
                            tuple(stores.get(u.username, ())), u.created_at) for u in users]

    def set_active(self, username: str, active: bool, *, actor: str) -> None:
        """Disable (or enable again) an account; disabling ends its sessions at once."""
        name = validate_username(username)

        def tx(conn: Connection) -> None:
            was = conn.execute(select(ConsoleUser.active).where(
                ConsoleUser.username == name)).scalar()
            if was is None:
                raise AccountError(f"no user {name}")
            conn.execute(update(ConsoleUser).where(ConsoleUser.username == name)
                         .values(active=active))
            if not active:
                conn.execute(delete(ConsoleSession).where(ConsoleSession.username == name))
            self._audit(conn, actor, "user.enable" if active else "user.disable", name, None,
                        {"active": bool(was)}, {"active": active})

        self._write(tx)

    def set_password(self, username: str, password: str, *, actor: str) -> None:
        """A new password; every session of the account ends."""
        name = validate_username(username)
        weak = passwords.check_strength(password)
        if weak:
            raise AccountError(weak)
        hashed = passwords.hash_password(password)

        def tx(conn: Connection) -> None:
            n = conn.execute(update(ConsoleUser).where(ConsoleUser.username == name)
                             .values(password_hash=hashed)).rowcount
            if n == 0:
                raise AccountError(f"no user {name}")
            conn.execute(delete(ConsoleSession).where(ConsoleSession.username == name))
            self._audit(conn, actor, "user.password", name, None, None, {"changed": True})

        self._write(tx)

    def _principal(self, conn: Connection, username: str) -> Principal | None:
        user = conn.execute(select(ConsoleUser.username, ConsoleUser.display_name,
                                   ConsoleUser.role).where(ConsoleUser.username == username,
                                                           ConsoleUser.active.is_(True))).first()
        if user is None:
            return None
        stores = conn.execute(select(ConsoleUserStore.store_id).where(
            ConsoleUserStore.username == username)).scalars().all()
        return Principal(user.username, user.display_name, user.role, frozenset(stores))

    def check_password(self, username: str, password: str) -> Principal | None:
        """The account if the name and password match an active one, else None."""
        try:
            name = validate_username(username)
        except AccountError:
            passwords.verify(None, password)  # same time as a wrong password
            return None
        with self._read() as conn:
            row = conn.execute(select(ConsoleUser.password_hash, ConsoleUser.active).where(
                ConsoleUser.username == name)).first()
        stored = row.password_hash if row is not None and row.active else None
        if not passwords.verify(stored, password) or stored is None:
            return None
        if passwords.needs_rehash(stored):
            fresh = passwords.hash_password(password)
            self._write(lambda conn: conn.execute(update(ConsoleUser).where(
                ConsoleUser.username == name).values(password_hash=fresh)))
        with self._read() as conn:
            return self._principal(conn, name)

    # -- sessions ---------------------------------------------------------------------------

    def open_session(self, principal: Principal) -> tuple[str, Session]:
        """A new session for ``principal``: the cookie's token (shown once) and the session."""
        token = secrets.token_urlsafe(32)
        now = self.clock()
        secret = csrf.new_secret()
        session = Session(principal, secret, _sha256(token), now + ABSOLUTE)

        def tx(conn: Connection) -> None:
            conn.execute(delete(ConsoleSession).where(ConsoleSession.expires_at < now))
            conn.execute(insert(ConsoleSession).values(
                token_hash=session.token_hash, username=principal.username, csrf_secret=secret,
                created_at=now, last_seen_at=now, expires_at=session.expires_at))
            self._audit(conn, principal.username, "session.open", principal.username, None,
                        None, None)

        self._write(tx)
        return token, session

    def session(self, token: str | None) -> Session | None:
        """The live session of a cookie's token; None if unknown, idle too long or expired."""
        if not token or len(token) > 100:
            return None
        token_hash = _sha256(token)
        now = self.clock()
        with self._read() as conn:
            row = conn.execute(select(
                ConsoleSession.username, ConsoleSession.csrf_secret, ConsoleSession.expires_at,
                ConsoleSession.last_seen_at).where(ConsoleSession.token_hash == token_hash)
            ).first()
            if row is None or row.expires_at <= now or row.last_seen_at + IDLE <= now:
                return None
            principal = self._principal(conn, row.username)
            secret, expires, last = row.csrf_secret, row.expires_at, row.last_seen_at
        if principal is None:
            return None
        if now - last >= TOUCH_EVERY:
            self._write(lambda conn: conn.execute(update(ConsoleSession).where(
                ConsoleSession.token_hash == token_hash).values(last_seen_at=now)))
        return Session(principal, secret, token_hash, expires)

    def close_session(self, session: Session) -> None:
        def tx(conn: Connection) -> None:
            conn.execute(delete(ConsoleSession).where(
                ConsoleSession.token_hash == session.token_hash))
            self._audit(conn, session.principal.username, "session.close",
                        session.principal.username, None, None, None)

        self._write(tx)
