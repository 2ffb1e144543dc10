"""Terminals: registration with a one-time code, enrollment, credentials, revocation."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, update

from pos_loyalty.errors import AuthError, StoreError
from pos_loyalty.server.db import Database, Refused
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


SEEN_RESOLUTION = timedelta(seconds=5)  # last contact is written at most this often


def authenticate(db: Database, credential: str | None) -> TerminalAuth:
    """The terminal a bearer credential belongs to; AuthError (401/403) with a reason.

    A valid credential is a contact: ``last_seen_at`` moves (at most every few seconds, so
    a busy terminal does not write on every request).
    """
    if not credential:
        raise AuthError(BAD_CREDENTIAL)
    terminal_id, sep, secret = credential.rpartition(".")
    if not sep or not terminal_id or not secret or len(credential) > 200:
        raise AuthError(BAD_CREDENTIAL)
    with db.read() as conn:
        row = conn.execute(
            select(Terminal.store_id, Terminal.status, Terminal.credential_hash,
                   Terminal.last_seen_at)
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
    now = db.clock()
    if row.last_seen_at is None or now - row.last_seen_at >= SEEN_RESOLUTION:
        db.write(lambda conn: conn.execute(update(Terminal).where(
            Terminal.terminal_id == terminal_id).values(last_seen_at=now)))
    return TerminalAuth(terminal_id, row.store_id)


@dataclass(frozen=True)
class Heartbeat:
    """What a terminal reports about itself with every sync round."""

    software_version: str = ""
    program_name: str = ""
    program_version: int | None = None
    reader_state: str = ""
    till_state: str = ""
    outbox_depth: int = 0
    oldest_unsent_at: datetime | None = None  # naive UTC
    last_sync_ok_at: datetime | None = None  # naive UTC
    clock_offset_ms: int | None = None
    last_error: str = ""
    held_count: int = 0
    conflict_count: int = 0


def record_heartbeat(db: Database, auth: TerminalAuth, beat: Heartbeat) -> datetime:
    """Keep a terminal's latest heartbeat; returns central's time of it."""
    now = db.clock()
    values: dict[str, Any] = {k: v for k, v in asdict(beat).items() if k != "clock_offset_ms"}
    values["last_error"] = values["last_error"][:200]
    if beat.clock_offset_ms is not None:
        values["clock_offset_ms"] = beat.clock_offset_ms
    db.write(lambda conn: conn.execute(update(Terminal).where(
        Terminal.terminal_id == auth.terminal_id).values(
        health_at=now, last_seen_at=now, **values)))
    return now


def _at(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else "-"


@dataclass(frozen=True)
class TerminalHealth:
    """One terminal as store IT's fleet view shows it."""

    terminal_id: str
    store_id: str
    status: str
    last_seen_at: datetime | None
    stale: bool
    health_at: datetime | None
    software_version: str
    program_name: str
    program_version: int | None
    reader_state: str
    till_state: str
    outbox_depth: int
    oldest_unsent_at: datetime | None
    last_sync_ok_at: datetime | None
    clock_offset_ms: int
    last_error: str
    held_count: int
    conflict_count: int
    acked_seq: int

    def cells(self) -> tuple[str, ...]:
        program = f"{self.program_name} v{self.program_version}" \
            if self.program_version is not None else (self.program_name or "-")
        return (self.terminal_id, self.store_id, self.status, _at(self.last_seen_at),
                "STALE" if self.stale else "ok", self.software_version or "-", program,
                self.reader_state or "-", self.till_state or "-", str(self.outbox_depth),
                _at(self.oldest_unsent_at), _at(self.last_sync_ok_at),
                str(self.clock_offset_ms), str(self.held_count), str(self.conflict_count),
                self.last_error or "-")


_HEALTH_COLS = (Terminal.terminal_id, Terminal.store_id, Terminal.status,
                Terminal.last_seen_at, Terminal.health_at, Terminal.software_version,
                Terminal.program_name, Terminal.program_version, Terminal.reader_state,
                Terminal.till_state, Terminal.outbox_depth, Terminal.oldest_unsent_at,
                Terminal.last_sync_ok_at, Terminal.clock_offset_ms, Terminal.last_error,
                Terminal.held_count, Terminal.conflict_count, Terminal.acked_seq)


def _health(r: Any, now: datetime, stale_after: timedelta) -> TerminalHealth:
    stale = r.status == "active" and (r.last_seen_at is None
                                      or now - r.last_seen_at > stale_after)
    return TerminalHealth(
        r.terminal_id, r.store_id, r.status, r.last_seen_at, stale, r.health_at,
        r.software_version, r.program_name, r.program_version, r.reader_state, r.till_state,
        int(r.outbox_depth), r.oldest_unsent_at, r.last_sync_ok_at, int(r.clock_offset_ms),
        r.last_error, int(r.held_count), int(r.conflict_count), int(r.acked_seq))


def list_terminals(db: Database, *, store_ids: Sequence[str] | None = None,
                   stale_after_s: int = 300) -> list[TerminalHealth]:
    """Every terminal (or those of ``store_ids``) with its last heartbeat; an active
    terminal silent for more than ``stale_after_s`` is flagged stale."""
    stmt = select(*_HEALTH_COLS)
    if store_ids is not None:
        stmt = stmt.where(Terminal.store_id.in_(list(store_ids)))
    now = db.clock()
    with db.read() as conn:
        rows = conn.execute(stmt.order_by(Terminal.store_id, Terminal.terminal_id)).all()
    return [_health(r, now, timedelta(seconds=stale_after_s)) for r in rows]


def terminal_health(db: Database, terminal_id: str, *,
                    stale_after_s: int = 300) -> TerminalHealth:
    """One terminal's health; StoreError if there is no such terminal."""
    with db.read() as conn:
        r = conn.execute(select(*_HEALTH_COLS).where(
            Terminal.terminal_id == terminal_id)).first()
    if r is None:
        raise Refused(f"no terminal {terminal_id}", status=404)
    return _health(r, db.clock(), timedelta(seconds=stale_after_s))



def terminals(db: Database) -> list[dict[str, Any]]:
    """Every terminal's health as a plain dict (the fields of :class:`TerminalHealth`)."""
    return [asdict(h) for h in list_terminals(db)]
