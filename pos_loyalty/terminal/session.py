"""Who is at the till and what each open transaction holds. Pure: no I/O, no clock.

A tap puts a member "at the till"; the next basket for a transaction binds that member to
it. A commit, void or new member closes the chapter. Everything that changes this state is
here, so the rules are visible in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pos_loyalty.rules import Basket, Quote
from pos_loyalty.store import MemberRecord

TxnKey = tuple[str, str]  # (pos_id, txn_id)


@dataclass
class OpenTxn:
    """A transaction the till has shown us a basket for but not yet committed."""

    pos_id: str
    txn_id: str
    member: MemberRecord | None = None
    basket: Basket | None = None
    quote: Quote | None = None


@dataclass
class TillSession:
    """State of one till's conversation with the terminal."""

    member: MemberRecord | None = None
    txns: dict[TxnKey, OpenTxn] = field(default_factory=dict)
    max_open: int = 64

    def identify(self, member: MemberRecord) -> None:
        """A member tapped: they are at the till until their sale closes."""
        self.member = member
        for txn in self.txns.values():
            if txn.member is None:
                txn.member = member

    def open_txn(self, pos_id: str, txn_id: str) -> OpenTxn:
        """The open transaction for this key, created and bound to the member at the till."""
        key = (pos_id, txn_id)
        txn = self.txns.get(key)
        if txn is None:
            if len(self.txns) >= self.max_open:  # a till that never commits must not grow us
                oldest = next(iter(self.txns))
                del self.txns[oldest]
            txn = OpenTxn(pos_id, txn_id, member=self.member)
            self.txns[key] = txn
        return txn

    def find(self, pos_id: str, txn_id: str) -> OpenTxn | None:
        return self.txns.get((pos_id, txn_id))

    def close(self, pos_id: str, txn_id: str) -> OpenTxn | None:
        """The sale is over (committed or voided): forget it and who was at the till."""
        txn = self.txns.pop((pos_id, txn_id), None)
        if txn is not None and txn.member is not None and txn.member == self.member:
            self.member = None
        return txn
