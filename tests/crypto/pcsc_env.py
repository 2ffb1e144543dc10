"""The PC/SC stack the PC/SC tests drive for real: pcscd with Debian's vpcd virtual reader
(:class:`~pos_loyalty.nfc.sim.vcard.VirtualPcscStack`), one per machine at a time.

Where it is missing the tests skip and say why, unless ``POS_LOYALTY_REQUIRE_PCSC=1`` (CI,
``.ci/pcsc.sh``) makes that a failure.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from pos_loyalty.errors import ReaderError
from pos_loyalty.nfc.sim.vcard import VirtualPcscStack, pcsc_stack_missing


def unavailable(reason: str) -> NoReturn:
    """Skip the test with ``reason``, or fail it where the stack is required."""
    if os.environ.get("POS_LOYALTY_REQUIRE_PCSC") == "1":
        pytest.fail(f"PC/SC stack required (POS_LOYALTY_REQUIRE_PCSC=1) but unavailable: "
                    f"{reason}")
    pytest.skip(f"PC/SC stack unavailable: {reason}")


@contextlib.contextmanager
def running_stack(workdir: Path) -> Iterator[VirtualPcscStack]:
    """pcscd with the vpcd reader (ours, or a system one that has it), held from its start
    to its stop under :func:`one_pcscd_at_a_time`."""
    why = pcsc_stack_missing()
    if why:
        unavailable(why)
    with one_pcscd_at_a_time():
        stack = VirtualPcscStack(workdir)
        try:
            stack.start()
        except ReaderError as exc:
            unavailable(str(exc))
        try:
            yield stack
        finally:
            stack.stop()


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
