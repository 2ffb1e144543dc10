"""Store IT's member and card changes as a terminal sees them after a real sync round."""

from __future__ import annotations

import pytest

from pos_loyalty.rules import DEFAULT_PROGRAM
from pos_loyalty.sync.client import SyncClient, run_sync
from pos_loyalty.terminal.service import TerminalService
from tests.conftest import Central, TerminalFactory, TerminalHandle
from tests.tillsales import member_tap, ring_up, tap


def sync(t: TerminalHandle) -> None:
    with SyncClient(t.server_url, t.credential) as client:
        assert run_sync(t.local, client).ok


@pytest.mark.parametrize("central_url", ["sqlite"], indirect=True)
class TestCardsAtTheTill:
    def test_blocked_card_is_refused_and_its_replacement_keeps_the_balance(
            self, central: Central, terminals: TerminalFactory) -> None:
        """After store IT blocks a lost card, the till refuses it; the new card earns on
        the same balance."""
        central.store.add_member("M-1", "Ann", card_id="C-1")
        central.store.adjust_points("M-1", 70, "opening", actor="test")
        t = terminals()
        sync(t)
        service = TerminalService(t.local, DEFAULT_PROGRAM)
        central.store.replace_card("C-1", "C-2")
        sync(t)
        refused = tap(service, member_tap("C-1"))
        assert refused["type"] == "card.refused" and "blocked" in refused["reason"]
        sale = ring_up(service, card_id="C-2", pos_id="P", txn_id="T1", total=500)
        assert sale["type"] == "points.awarded" and sale["balance_after"] == 75
        sync(t)
        assert central.store.balance("M-1") == 75 == central.store.ledger_sum("M-1")

    def test_blank_card_earns_at_once_and_is_claimed_later(
            self, central: Central, terminals: TerminalFactory) -> None:
        """A blank card handed out at the till earns on its first sale; claiming it keeps
        the points and the terminal learns the name."""
        central.store.issue_blank_cards(["B-1"])
        t = terminals()
        sync(t)
        service = TerminalService(t.local, DEFAULT_PROGRAM)
        sale = ring_up(service, card_id="B-1", pos_id="P", txn_id="T1", total=1200)
        assert sale["type"] == "points.awarded" and sale["points"] == 12
        sync(t)
        assert central.store.balance("A-B-1") == 12
        central.store.update_member("A-B-1", display_name="Noa", consent=True)
        sync(t)
        rec = t.local.find_by_card("B-1")
        assert rec is not None and rec.display_name == "Noa" and rec.balance == 12
