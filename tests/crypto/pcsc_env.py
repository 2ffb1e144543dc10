"""Test-side shorthand for :class:`~pos_loyalty.nfc.sim.vcard.VirtualPcscStack`.

Kept for tests written against its earlier function interface: ``missing()``,
``start(workdir) -> PcscEnv | reason``, ``restart(env)``, ``stop(env)``.
"""

from __future__ import annotations

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
