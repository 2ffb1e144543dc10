"""Who is at the till and what each open sale holds. Pure: no I/O, no clock, no store.

The binding rules of docs/pos-protocol.md section 6.4 live here, in one place:

- A tap puts a member "at the till" and never touches an open sale by itself.
- ``basket.update`` binds the sale: with ``member_id`` a string, to that member (who must be
  the member at the till or the sale's own member); with ``member_id`` null, to nobody (the
  member is taken off); without the field, to the member tapped since the sale was last
  bound, if any, else as before (a new sale: the member at the till, or nobody).
- A different member tapped after the sale was last quoted makes its commit and its
  redemption answer ``member_changed``: the till was shown someone else, so it must choose
  with a new ``basket.update``; points never go to a member the till was not shown.
- A commit or a void closes the sale; the member at the till leaves with their sale, so a tap
  after a commit starts afresh.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from pos_loyalty.errors import LoyaltyError
from pos_loyalty.rules import Basket, MemberView, Quote

TxnKey = tuple[str, str]  # (pos_id, txn_id)


class _AtTill:
    """Marker: the basket did not say who the sale is for (the member at the till)."""


AT_TILL: Final = _AtTill()
Binding = str | None | _AtTill
"""What a basket.update asks: a member_id, None (nobody), or AT_TILL (field left out)."""


class Refused(LoyaltyError):
    """A request the terminal turns down; ``code`` is the ``error`` code, the text is for
    the cashier."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = code


@dataclass(frozen=True)
class Tapped:
    """A member as the till was shown them by ``member.identified``; ``tap_no`` orders taps."""

    member_id: str
    name: str
    balance: int
    tap_no: int

    def __str__(self) -> str:
        return f"{self.name} ({self.member_id})"


@dataclass
class OpenTxn:
    """A sale the till has shown us a basket for but not yet committed.

    ``seen_tap`` is the number of the last tap the till had been told of when it last bound
    the sale; ``view`` is the member's engine state the last quote was made from, ``quoted_at``
    its time, and ``redeem_points`` what the till asked to redeem (kept across basket changes
    for the same member, dropped when the member changes).
    """

    pos_id: str
    txn_id: str
    member: Tapped | None = None
    bound: bool = False
    seen_tap: int = 0
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

    member: Tapped | None = None
    taps: int = 0
    txns: dict[TxnKey, OpenTxn] = field(default_factory=dict)
    max_open: int = 64
    voided: OrderedDict[TxnKey, VoidedTxn] = field(default_factory=OrderedDict)
    max_voided: int = 1024

    def identify(self, member_id: str, name: str, balance: int) -> Tapped:
        """A member tapped: they are at the till until their sale closes. Binds no sale."""
        self.taps += 1
        self.member = Tapped(member_id, name, balance, self.taps)
        return self.member

    def open_txn(self, pos_id: str, txn_id: str) -> OpenTxn:
        """The open transaction for this key, created (unbound) if new.

        A basket for a voided transaction number opens it again (the till reuses it).
        """
        key = (pos_id, txn_id)
        txn = self.txns.get(key)
        if txn is None:
            self.voided.pop(key, None)
            if len(self.txns) >= self.max_open:  # a till that never commits must not grow us
                oldest = next(iter(self.txns))
                del self.txns[oldest]
            txn = OpenTxn(pos_id, txn_id)
            self.txns[key] = txn
        return txn

    def bind(self, txn: OpenTxn, binding: Binding) -> None:
        """Bind ``txn`` as a basket.update asks (see the module docstring); Refused if the
        till names a member who was not tapped for it."""
        if isinstance(binding, _AtTill):
            newer = self.member is not None and self.member.tap_no > txn.seen_tap
            member = self.member if newer or not txn.bound else txn.member
        elif binding is None:
            member = None
            if self.member is not None and txn.member is not None \
                    and self.member.member_id == txn.member.member_id:
                self.member = None  # taken off: they are no longer the one at the till
        elif txn.member is not None and txn.member.member_id == binding:
            member = txn.member
        elif self.member is not None and self.member.member_id == binding:
            member = self.member
        else:
            raise Refused("unknown_member", f"member {binding} was not tapped for sale "
                          f"{txn.txn_id}: ask the member to tap their card")
        if (member.member_id if member else None) != \
                (txn.member.member_id if txn.member else None):
            txn.redeem_points = 0  # a redemption belongs to the member who asked for it
        txn.member = member
        txn.bound = True
        txn.seen_tap = self.taps

    def check_member(self, txn: OpenTxn) -> None:
        """Refused (``member_changed``) when another member tapped since the sale was quoted:
        the till shows that member now, so it must say who the sale is for."""
        newer = self.member
        if newer is None or newer.tap_no <= txn.seen_tap:
            return
        if txn.member is not None and txn.member.member_id == newer.member_id:
            return
        bound = str(txn.member) if txn.member is not None else "no member"
        raise Refused("member_changed", f"{newer} tapped after sale {txn.txn_id} was quoted "
                      f"for {bound}: send the basket again with the member_id to credit "
                      "(or null for none)")

    def restore(self, txn: OpenTxn) -> None:
        """Put back a sale kept across a restart (bound to its member, no tap seen yet)."""
        txn.bound, txn.seen_tap = True, self.taps
        self.txns[(txn.pos_id, txn.txn_id)] = txn
        while len(self.txns) > self.max_open:
            del self.txns[next(iter(self.txns))]

    def find(self, pos_id: str, txn_id: str) -> OpenTxn | None:
        return self.txns.get((pos_id, txn_id))

    def close(self, pos_id: str, txn_id: str) -> OpenTxn | None:
        """The sale is over (committed or voided): forget it, and its member at the till."""
        txn = self.txns.pop((pos_id, txn_id), None)
        if txn is not None and txn.member is not None and self.member is not None \
                and txn.member.member_id == self.member.member_id:
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
                           txn.view.balance if txn.view is not None and txn.member else
                           (txn.member.balance if txn.member else None))
        self.voided[key] = record
        while len(self.voided) > self.max_voided:
            self.voided.popitem(last=False)
        return record

    def find_voided(self, pos_id: str, txn_id: str) -> VoidedTxn | None:
        return self.voided.get((pos_id, txn_id))
