"""Which program a terminal runs: the one central published for its store, once pulled.

Central sends one ``programs`` row for the chain (``chain``) and one per store
(``store:<id>``), each the newest version started for it (docs/store-it.md). The terminal
runs its store's row, else the chain's, else its own config's program file, else the
built-in 1 pt per 1.00. :class:`ProgramFollower` is asked between sales (never during one)
whether that has changed; a pulled body that does not parse is logged and the running
program kept, so a bad publication cannot stop a till.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import text

from pos_loyalty.errors import LoyaltyError
from pos_loyalty.rules import Program, in_timezone, parse_program
from pos_loyalty.store.local import LocalStore

log = logging.getLogger("pos_loyalty.sync")


class ProgramHolder(Protocol):
    """What runs the program (the daemon's TerminalService)."""

    program: Program
    program_version: int | None


@dataclass(frozen=True)
class ActiveProgram:
    """The program a terminal runs, with what identifies it in banners, logs and quotes."""

    program: Program
    version: int | None  # central's version; None for a local file or the built-in one
    origin: str  # "central", "file" or "built-in"

    @property
    def name(self) -> str:
        return self.program.name

    @property
    def label(self) -> str:
        """``Points v4`` (central), ``Points (file)``, ``Default points (built-in)``."""
        if self.version is not None:
            return f"{self.name} v{self.version}"
        return f"{self.name} ({self.origin})"


def pulled_program(store: LocalStore, store_id: str | None) -> tuple[str, str, int] | None:
    """(program_id, body, version) of the row this terminal runs, or None if none pulled."""
    ids = [f"store:{store_id}", "chain"] if store_id else ["chain"]
    with store.engine.connect() as conn:
        rows = {r[0]: (r[0], str(r[1]), int(r[2])) for r in conn.execute(text(
            "SELECT program_id, body, version FROM programs WHERE program_id IN "
            "(:a, :b)"), {"a": ids[0], "b": ids[-1]})}
    return next((rows[i] for i in ids if i in rows), None)


class ProgramFollower:
    """Follows the pulled program for this terminal's store; ``fallback`` when none."""

    def __init__(self, store: LocalStore, fallback: ActiveProgram, *, timezone: str = "") -> None:
        self.store = store
        self.fallback = fallback
        self.timezone = timezone  # the shop's own zone wins over a program's, as at start
        self.current = fallback
        self._refused: tuple[str, int] | None = None  # a bad body already logged

    def poll(self) -> ActiveProgram | None:
        """The program to switch to, or None to keep the running one."""
        ident = self.store.sync_identity()
        row = pulled_program(self.store, ident.store_id)
        if row is None:
            return None
        program_id, body, version = row
        if self.current.origin == "central" and self.current.version == version:
            return None
        if self._refused == (program_id, version):
            return None
        try:
            program = parse_program(body, path=f"central program {program_id} v{version}")
        except LoyaltyError as exc:
            self._refused = (program_id, version)
            log.error("program %s version %d from central not applied, keeping %s: %s",
                      program_id, version, self.current.label, exc)
            return None
        if self.timezone:
            program = in_timezone(program, self.timezone)
        return ActiveProgram(program, version, "central")

    def follow(self, service: ProgramHolder, *, busy: bool) -> bool:
        """Switch ``service`` to a newly pulled program unless a sale is open (``busy``):
        a basket quoted under one program is committed under the same one. True if it
        switched."""
        if busy:
            return False
        new = self.poll()
        if new is None:
            return False
        service.program = new.program
        service.program_version = new.version
        self.switched(new)
        return True

    def switched(self, active: ActiveProgram) -> None:
        """Record that the daemon now runs ``active``."""
        log.info("program now %s (was %s)", active.label, self.current.label)
        self.current = active
