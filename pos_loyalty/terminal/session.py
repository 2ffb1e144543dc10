"""Who is at the till and what each open transaction holds. Pure: no I/O, no clock.

A tap puts a member "at the till"; the next basket for a transaction binds that member to
it. A commit, void or new member closes the chapter. Everything that changes this state is
here, so the rules are visible in one place.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime

from pos_loyalty.rules import Basket, MemberView, Quote
from pos_loyalty.store import MemberRecord

TxnKey = tuple[str, str]  # (pos_id, txn_id)


@dataclass
class OpenTxn:
    """A transaction the till has shown us a basket for but not yet committed.

    ``view`` is the member's engine state the last quote was made from, ``quoted_at`` its
    time, and ``redeem_points`` what the till asked to redeem (kept across basket changes).
    """

    pos_id: str
    txn_id: str
    member: MemberRecord | None = None
    basket: Basket | None = None
    quote: Quote | None = None
    view: MemberView | None = None
    quoted_at: datetime | None = None
    redeem_points: int = 0


@dataclass(frozen=True)
class VoidedTxn:
    """What the till was told when it voided a transaction (repeated voids get it again)."""

    member_id: str | None
    balance: int | None


@dataclass
class TillSession:
    """State of one till's conversation with the terminal."""

    member: MemberRecord | None = None
    txns: dict[TxnKey, OpenTxn] = field(default_factory=dict)
    max_open: int = 64
    voided: OrderedDict[TxnKey, VoidedTxn] = field(default_factory=OrderedDict)
    max_voided: int = 1024

    def identify(self, member: MemberRecord) -> None:
        """A member tapped: they are at the till until their sale closes."""
        self.member = member
        for txn in self.txns.values():
            if txn.member is None:
                txn.member = member

    def open_txn(self, pos_id: str, txn_id: str) -> OpenTxn:
        """The open transaction for this key, created and bound to the member at the till.

        A basket for a voided transaction number opens it again (the till reuses it).
        """
        key = (pos_id, txn_id)
        txn = self.txns.get(key)
        if txn is None:
            self.voided.pop(key, None)
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

    def void(self, pos_id: str, txn_id: str) -> VoidedTxn | None:
        """Drop an open transaction and remember it as voided; None if it was never open.

        Voiding again returns the first record; the memory of voids is bounded.
        """
        key = (pos_id, txn_id)
        known = self.voided.get(key)
        if known is not None:
            return known
        txn = self.close(pos_id, txn_id)
        if txn is None:
            return None
        record = VoidedTxn(txn.member.member_id if txn.member else None,
                           txn.view.balance if txn.view is not None else
                           (txn.member.balance if txn.member else None))
        self.voided[key] = record
        while len(self.voided) > self.max_voided:
            self.voided.popitem(last=False)
        return record

    def find_voided(self, pos_id: str, txn_id: str) -> VoidedTxn | None:
        return self.voided.get((pos_id, txn_id))
