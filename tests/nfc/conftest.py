"""Fixtures for the NFC tests: a tag emulator on a free loopback port and a running Reader."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from nfc_testkit import ReaderSession

from pos_loyalty.nfc.cardformat import CardTrust
from pos_loyalty.nfc.demo_keys import demo_trust
from pos_loyalty.nfc.sim.emulator import TagEmulator


@pytest.fixture
def emulator() -> Iterator[TagEmulator]:
    with TagEmulator() as emu:
        yield emu


@pytest.fixture
def make_session(emulator: TagEmulator) -> Iterator[Callable[..., ReaderSession]]:
    sessions: list[ReaderSession] = []

    def make(trust: CardTrust | None = None, debounce_s: float = 0.0) -> ReaderSession:
        session = ReaderSession(emulator, trust or demo_trust(), debounce_s).start()
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        session.close()


@pytest.fixture
def session(make_session: Callable[..., ReaderSession]) -> ReaderSession:
    return make_session()
