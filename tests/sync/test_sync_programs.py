"""A terminal follows the program central published for its store, through a real sync."""

from __future__ import annotations

from datetime import datetime

import pytest

from pos_loyalty.rules import DEFAULT_PROGRAM
from pos_loyalty.sync.client import SyncClient, run_sync
from pos_loyalty.sync.programs import ActiveProgram, ProgramFollower
from tests.conftest import Central, TerminalFactory, TerminalHandle

PROGRAM = '[program]\nname = "{name}"\n\n[[rule]]\nid = "base"\nkind = "earn"\n' \
          'label = "Base"\npoints = {n}\nper = 100\n'
BUILT_IN = ActiveProgram(DEFAULT_PROGRAM, None, "built-in")


def sync(t: TerminalHandle) -> None:
    with SyncClient(t.server_url, t.credential) as client:
        assert run_sync(t.local, client).ok


@pytest.mark.parametrize("central_url", ["sqlite"], indirect=True)
class TestFollower:
    def test_store_version_wins_over_chain_and_changes_once(
            self, central: Central, terminals: TerminalFactory,
            caplog: pytest.LogCaptureFixture) -> None:
        """The chain's program until the store gets its own; each version is offered once;
        a pulled body that does not parse keeps the running program and is logged once."""
        t = terminals("S1")
        follower = ProgramFollower(t.local, BUILT_IN, timezone="Europe/Paris")
        sync(t)
        assert follower.poll() is None  # nothing published: the built-in program stays
        central.store.publish_program(PROGRAM.format(name="Chain", n=1))
        sync(t)
        first = follower.poll()
        assert first is not None and first.label == "Chain v1"
        assert first.program.timezone == "Europe/Paris"
        follower.switched(first)
        assert follower.poll() is None
        central.store.publish_program(PROGRAM.format(name="Other", n=5), stores=("S2",))
        central.store.publish_program(PROGRAM.format(name="S1 double", n=2), stores=("S1",))
        sync(t)
        second = follower.poll()
        assert second is not None and (second.name, second.version) == ("S1 double", 3)
        follower.switched(second)
        t.local.apply_pull("programs", ("program_id", "store_id", "name", "body", "version"),
                           [["store:S1", "S1", "Broken", "[program\n", 9]],
                           t.local.pull_cursors()["programs"], datetime(2026, 3, 1))
        assert follower.poll() is None and follower.poll() is None
        assert caplog.text.count("version 9 from central not applied") == 1
        assert follower.current.label == "S1 double v3"

    def test_service_switches_between_sales_only(self, central: Central,
                                                 terminals: TerminalFactory) -> None:
        """A pulled program waits while a sale is open, then the next sale earns under it."""
        from pos_loyalty.terminal.service import TerminalService
        from tests.tillsales import ring_up

        central.store.add_member("M-1", "Ann", card_id="C-1")
        t = terminals("S1")
        sync(t)
        service = TerminalService(t.local, DEFAULT_PROGRAM)
        follower = ProgramFollower(t.local, BUILT_IN)
        central.store.publish_program(PROGRAM.format(name="Triple", n=3), stores=("S1",))
        sync(t)
        assert not follower.follow(service, busy=True)
        assert service.program.name == DEFAULT_PROGRAM.name
        assert follower.follow(service, busy=False)
        assert service.program.name == "Triple" and follower.current.label == "Triple v1"
        sale = ring_up(service, card_id="C-1", pos_id="P", txn_id="T1", total=1000)
        assert sale["type"] == "points.awarded" and sale["points"] == 30
