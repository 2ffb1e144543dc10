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


class TestVoid:
    """Voided transactions are dropped but remembered, so a repeated void answers the same."""

    def test_void_drops_open_txn_and_remembers_it(self) -> None:
        """A voided sale is no longer open, nobody is at the till, and the void is on record."""
        s = TillSession()
        s.identify(ADA)
        s.open_txn("P", "1")
        record = s.void("P", "1")
        assert record is not None and record.member_id == "M-1" and record.balance == 100
        assert s.find("P", "1") is None and s.member is None
        assert s.find_voided("P", "1") == record
        assert s.void("P", "1") == record  # repeated: the first answer

    def test_void_of_unknown_txn_records_nothing(self) -> None:
        """Voiding a transaction never opened says so and keeps no record."""
        s = TillSession()
        assert s.void("P", "9") is None
        assert s.find_voided("P", "9") is None

    def test_basket_after_void_reopens(self) -> None:
        """A till that reuses a voided number with a new basket gets an open sale again."""
        s = TillSession()
        s.open_txn("P", "1")
        s.void("P", "1")
        s.open_txn("P", "1")
        assert s.find_voided("P", "1") is None and s.find("P", "1") is not None

    def test_void_memory_is_bounded(self) -> None:
        """The record of voids keeps only the newest ones."""
        s = TillSession(max_voided=2)
        for i in range(5):
            s.open_txn("P", str(i))
            s.void("P", str(i))
        assert list(s.voided) == [("P", "3"), ("P", "4")]
