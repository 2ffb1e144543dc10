"""The till session: who is at the till and which transactions are open."""

from __future__ import annotations

from pos_loyalty.store import MemberRecord
from pos_loyalty.terminal.session import TillSession

ADA = MemberRecord("M-1", "Ada", "Gold", 100, 0, 0, "C-1", "active")
BOB = MemberRecord("M-2", "Bob", None, 0, 0, 0, "C-2", "active")


class TestTillSession:
    def test_basket_binds_member_at_till(self) -> None:
        """A transaction opened after a tap belongs to the tapped member."""
        s = TillSession()
        s.identify(ADA)
        assert s.open_txn("P", "1").member == ADA

    def test_tap_after_basket_binds_open_txn(self) -> None:
        """A member tapping after the basket was started still gets the sale."""
        s = TillSession()
        txn = s.open_txn("P", "1")
        assert txn.member is None
        s.identify(ADA)
        assert s.find("P", "1") is txn and txn.member == ADA

    def test_close_forgets_member(self) -> None:
        """Closing the member's sale leaves nobody at the till."""
        s = TillSession()
        s.identify(ADA)
        s.open_txn("P", "1")
        assert s.close("P", "1") is not None
        assert s.member is None and s.find("P", "1") is None

    def test_next_customer_is_not_bound_to_old_txn(self) -> None:
        """A second member tapping does not take over a sale already bound to the first."""
        s = TillSession()
        s.identify(ADA)
        s.open_txn("P", "1")
        s.identify(BOB)
        txn = s.find("P", "1")
        assert txn is not None and txn.member == ADA

    def test_open_transactions_are_bounded(self) -> None:
        """A till that never commits cannot grow the session without bound."""
        s = TillSession(max_open=3)
        for i in range(10):
            s.open_txn("P", str(i))
        assert sorted(t for _, t in s.txns) == ["7", "8", "9"]
