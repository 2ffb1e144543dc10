"""Test-side shorthand for :class:`~pos_loyalty.nfc.sim.vcard.VirtualPcscStack`.

Kept for tests written against its earlier function interface: ``missing()``,
``start(workdir) -> PcscEnv | reason``, ``restart(env)``, ``stop(env)``; and
``one_pcscd_at_a_time()``, which every fixture that starts a stack holds until it stops it.
"""

from __future__ import annotations

import contextlib
import fcntl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pos_loyalty.errors import ReaderError
from pos_loyalty.nfc.sim.vcard import VirtualPcscStack, pcsc_stack_missing


@dataclass
class PcscEnv:
    stack: VirtualPcscStack

    @property
    def reader(self) -> str:
        return self.stack.reader

    @property
    def port(self) -> int:
        return self.stack.port


def missing() -> str | None:
    return pcsc_stack_missing()


def start(workdir: Path) -> PcscEnv | str:
    stack = VirtualPcscStack(workdir)
    try:
        stack.start()
    except ReaderError as exc:
        return str(exc)
    return PcscEnv(stack)


def restart(env: PcscEnv) -> bool:
    try:
        env.stack.restart()
    except ReaderError:
        return False
    return True


def stop(env: PcscEnv) -> None:
    env.stack.stop()


@contextlib.contextmanager
def one_pcscd_at_a_time() -> Iterator[None]:
    """Hold the machine-wide lock for a pcscd stack of our own, from its start to its stop.

    pcscd's client socket (/run/pcscd/pcscd.comm) is one per machine: a second test process
    (a parallel pytest-xdist worker, another run) starting its own pcscd meanwhile would see
    it exit at once and skip its tests. With this lock the second one waits instead.
    """
    path = Path(tempfile.gettempdir()) / "pos-loyalty-pcscd.lock"
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
