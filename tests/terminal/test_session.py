"""The till session: who is at the till, which sales are open and whom each is bound to."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pos_loyalty.terminal.session import AT_TILL, OpenTxn, Refused, TillSession


def ada(s: TillSession) -> None:
    s.identify("M-1", "Ada", 100)


def bob(s: TillSession) -> None:
    s.identify("M-2", "Bob", 0)


def basket(s: TillSession, txn_id: str, binding: object = AT_TILL) -> OpenTxn:
    txn = s.open_txn("P", txn_id)
    s.bind(txn, binding)  # type: ignore[arg-type]
    return txn


def member_of(txn: OpenTxn) -> str | None:
    return txn.member.member_id if txn.member else None


class TestBinding:
    def test_basket_binds_member_at_till(self) -> None:
        """A sale opened after a tap belongs to the tapped member."""
        s = TillSession()
        ada(s)
        assert member_of(basket(s, "1")) == "M-1"

    def test_tap_binds_no_open_sale_by_itself(self) -> None:
        """A member tapping after the basket was quoted is not slipped into the sale."""
        s = TillSession()
        txn = basket(s, "1")
        ada(s)
        assert txn.member is None

    def test_second_member_makes_commit_ask(self) -> None:
        """Another member tapped after the quote: the till must choose (member_changed)."""
        s = TillSession()
        ada(s)
        txn = basket(s, "1")
        bob(s)
        with pytest.raises(Refused) as exc:
            s.check_member(txn)
        assert exc.value.code == "member_changed"
        assert "Bob (M-2)" in str(exc.value) and "Ada (M-1)" in str(exc.value)

    def test_till_keeps_the_first_member_explicitly(self) -> None:
        """Naming the sale's own member after a second tap keeps it and clears the question."""
        s = TillSession()
        ada(s)
        txn = basket(s, "1")
        bob(s)
        s.bind(txn, "M-1")
        s.check_member(txn)
        assert member_of(txn) == "M-1"

    def test_basket_without_field_after_a_tap_follows_the_tap(self) -> None:
        """A basket sent after the till was shown a new member is for that member."""
        s = TillSession()
        ada(s)
        txn = basket(s, "1")
        bob(s)
        s.bind(txn, AT_TILL)
        s.check_member(txn)
        assert member_of(txn) == "M-2"

    def test_same_member_tapping_again_asks_nothing(self) -> None:
        """A repeated tap of the sale's own member is no change of member."""
        s = TillSession()
        ada(s)
        txn = basket(s, "1")
        ada(s)
        s.check_member(txn)

    def test_member_not_tapped_cannot_be_named(self) -> None:
        """A till cannot credit a member who never tapped (nothing trusts its word)."""
        s = TillSession()
        ada(s)
        txn = basket(s, "1")
        with pytest.raises(Refused) as exc:
            s.bind(txn, "M-9")
        assert exc.value.code == "unknown_member"
        assert member_of(txn) == "M-1"

    def test_taking_the_member_off(self) -> None:
        """member_id null takes the member off; a later basket without the field keeps it off."""
        s = TillSession()
        ada(s)
        txn = basket(s, "1")
        txn.redeem_points = 50
        s.bind(txn, None)
        assert txn.member is None and txn.redeem_points == 0 and s.member is None
        s.bind(txn, AT_TILL)
        assert txn.member is None

    def test_redemption_kept_for_the_same_member(self) -> None:
        """Re-sending the basket for the same member keeps the redemption asked for."""
        s = TillSession()
        ada(s)
        txn = basket(s, "1")
        txn.redeem_points = 50
        s.bind(txn, AT_TILL)
        assert txn.redeem_points == 50

    def test_close_forgets_member(self) -> None:
        """Closing the member's sale leaves nobody at the till: the next sale starts afresh."""
        s = TillSession()
        ada(s)
        basket(s, "1")
        assert s.close("P", "1") is not None
        assert s.member is None and s.find("P", "1") is None
        assert basket(s, "2").member is None

    def test_tap_after_commit_binds_next_sale(self) -> None:
        """After a commit, the next member's tap belongs to the next sale."""
        s = TillSession()
        ada(s)
        basket(s, "1")
        s.close("P", "1")
        bob(s)
        assert member_of(basket(s, "2")) == "M-2"

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
        ada(s)
        basket(s, "1")
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


class TestPurity:
    def test_session_imports_no_io(self) -> None:
        """The till session loads without SQLAlchemy, pyserial, nfcpy, sockets or threads."""
        code = ("import sys, pos_loyalty.terminal.session as m; "
                "bad = {'sqlalchemy', 'serial', 'nfc', 'socket', 'threading', 'httpx'}; "
                "print(sorted(bad & set(sys.modules)))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True)
        assert out.stdout.strip() == "[]"
