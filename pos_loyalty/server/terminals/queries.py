"""Terminals: registration with a one-time code, enrollment, credentials, revocation."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, select, update

from pos_loyalty.errors import AuthError, StoreError
from pos_loyalty.server.db import Database
from pos_loyalty.store.central_models import Store, Terminal

log = logging.getLogger("pos_loyalty.server")

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud over the phone
BAD_CREDENTIAL = "invalid or missing terminal credential"  # one reason for every bad one


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def normalize_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


@dataclass(frozen=True)
class TerminalAuth:
    """Who a valid credential belongs to."""

    terminal_id: str
    store_id: str


@dataclass(frozen=True)
class Enrollment:
    terminal_id: str
    store_id: str
    credential: str


def add_terminal(db: Database, store_id: str, *, terminal_id: str | None = None,
                 ttl_s: int = 7 * 24 * 3600) -> tuple[str, str]:
    """Register a terminal of ``store_id``; returns (terminal_id, one-time code)."""
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(16))
    code = "-".join(raw[i:i + 4] for i in range(0, 16, 4))
    tid = terminal_id or f"T-{secrets.token_hex(4).upper()}"
    now = db.clock()

    def tx(conn: Connection) -> None:
        conn.execute(db.insert(Store).values(
            store_id=store_id, name=store_id, created_at=now,
        ).on_conflict_do_nothing(index_elements=[Store.store_id]))
        conn.execute(db.insert(Terminal).values(
            terminal_id=tid, store_id=store_id, status="pending",
            enroll_code_hash=_sha256(raw), enroll_expires_at=now + timedelta(seconds=ttl_s),
            created_at=now, acked_seq=0, clock_offset_ms=0))

    try:
        db.write(tx)
    except StoreError as exc:
        raise StoreError(f"cannot add terminal {tid}: {exc}") from exc
    log.info("terminal %s added to store %s", tid, store_id)
    return tid, code


def enroll(db: Database, code: str) -> Enrollment:
    """Exchange a one-time code for the terminal's credential (shown once, kept hashed)."""
    secret = secrets.token_urlsafe(32)
    now = db.clock()
    code_hash = _sha256(normalize_code(code))

    def tx(conn: Connection) -> tuple[str, str] | None:
        row = conn.execute(
            update(Terminal)
            .where(Terminal.enroll_code_hash == code_hash, Terminal.status == "pending",
                   Terminal.enroll_expires_at > now)
            .values(status="active", credential_hash=_sha256(secret),
                    enroll_code_hash=None, enrolled_at=now)
            .returning(Terminal.terminal_id, Terminal.store_id)
        ).first()
        return None if row is None else (row[0], row[1])

    found = db.write(tx)
    if found is None:
        log.warning("enrollment refused: unknown, used or expired code")
        raise AuthError("enrollment code unknown, already used or expired", status=403)
    log.info("terminal %s of store %s enrolled", *found)
    return Enrollment(found[0], found[1], f"{found[0]}.{secret}")


def revoke_terminal(db: Database, terminal_id: str) -> bool:
    """Revoke a terminal's credential (and any unused code); False if unknown."""
    now = db.clock()

    def tx(conn: Connection) -> int:
        return conn.execute(
            update(Terminal).where(Terminal.terminal_id == terminal_id)
            .values(status="revoked", revoked_at=now, enroll_code_hash=None)
        ).rowcount

    done = db.write(tx) > 0
    if done:
        log.warning("terminal %s revoked", terminal_id)
    return done


def terminals(db: Database) -> list[dict[str, Any]]:
    with db.read() as conn:
        rows = conn.execute(select(
            Terminal.terminal_id, Terminal.store_id, Terminal.status, Terminal.acked_seq,
            Terminal.last_seen_at, Terminal.clock_offset_ms,
        ).order_by(Terminal.store_id, Terminal.terminal_id)).mappings().all()
    return [dict(r) for r in rows]


def authenticate(db: Database, credential: str | None) -> TerminalAuth:
    """The terminal a bearer credential belongs to; AuthError (401/403) with a reason."""
    if not credential:
        raise AuthError(BAD_CREDENTIAL)
    terminal_id, sep, secret = credential.rpartition(".")
    if not sep or not terminal_id or not secret or len(credential) > 200:
        raise AuthError(BAD_CREDENTIAL)
    with db.read() as conn:
        row = conn.execute(
            select(Terminal.store_id, Terminal.status, Terminal.credential_hash)
            .where(Terminal.terminal_id == terminal_id)
        ).first()
    if row is None or row.credential_hash is None:
        raise AuthError(BAD_CREDENTIAL)
    if not hmac.compare_digest(row.credential_hash, _sha256(secret)):
        raise AuthError(BAD_CREDENTIAL)
    if row.status == "revoked":
        raise AuthError(f"terminal {terminal_id} has been revoked", status=403)
    if row.status != "active":
        raise AuthError(f"terminal {terminal_id} is not enrolled", status=403)
    return TerminalAuth(terminal_id, row.store_id)
