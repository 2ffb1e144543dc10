"""The rules central applies to every terminal event before it may move a balance.

A pure core: no database, no clock. ``CentralStore`` loads what a batch needs (members,
balances of debited members, the stores they used, open overdrafts, the sales reversals
point at) into a :class:`BatchState`, then asks :func:`check_event` about each new event in
the batch's order; an applied event updates the state, so later events of the same batch
see it. An event that fails a rule is stored **held** with the reason: it does not count in
any balance until store IT releases it. The rules are tabulated in ``docs/sync.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from pos_loyalty.rules.refund import COVER_MARK

REFUND_MARK = "/refund/"  # a reversal's txn_ref is "<sale ref>/refund/<refund id>"


@dataclass(frozen=True)
class EventPolicy:
    """A store's limits on its terminals' events (points; defaults are the safe ones)."""

    max_event_points: int = 100_000
    max_terminal_day_earn: int = 1_000_000
    offline_member_cap: int = 500
    offline_terminal_budget: int = 5_000
    debit_other_stores: bool = False

    def __post_init__(self) -> None:
        for name in ("max_event_points", "max_terminal_day_earn", "offline_member_cap",
                     "offline_terminal_budget"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")


class Event(Protocol):
    """The fields of one pushed event the rules look at (any object that has them)."""

    @property
    def member_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def points(self) -> int: ...
    @property
    def txn_ref(self) -> str: ...


class EventFacts(NamedTuple):
    """An :class:`Event` on its own (tests, tools)."""

    member_id: str
    kind: str
    points: int
    txn_ref: str


@dataclass
class MemberFacts:
    """What central knows of one member while a batch is checked."""

    balance: int = 0
    stores: set[str] = field(default_factory=set)  # stores with applied terminal events
    overdraft_here: int = 0  # unresolved points short caused by this terminal


@dataclass
class SaleFacts:
    """Applied points of one sale of one member, for checking the reversals of it."""

    earned: int = 0
    redeemed: int = 0  # positive number of points redeemed on the sale
    recredited: int = 0  # points already given back by reversals


@dataclass
class RefundFacts:
    """Applied points of one refund of one member, for checking its cover credit."""

    taken: int = 0  # positive number of points the refund took back
    covered: int = 0  # points already credited as paid from the refund's money


@dataclass
class BatchState:
    """Everything the rules need for one batch of one terminal (mutated as events apply)."""

    policy: EventPolicy
    store_id: str
    day_earned: int
    terminal_overdraft: int
    members: dict[str, MemberFacts]  # known members only; absent = unknown member
    sales: dict[tuple[str, str], SaleFacts] = field(default_factory=dict)
    refunds: dict[tuple[str, str], RefundFacts] = field(default_factory=dict)


class Verdict(NamedTuple):
    status: str  # "applied" or "held"
    reason: str = ""
    short: int = 0  # points this event took the balance below zero (applied debits)
    balance_after: int = 0


def sale_ref(txn_ref: str) -> str | None:
    """The sale a reversal points at, or None if its reference names no sale."""
    sale, mark, _refund = txn_ref.partition(REFUND_MARK)
    return sale if mark and sale else None


def _held(reason: str) -> Verdict:
    return Verdict("held", reason)


def check_event(ev: Event, state: BatchState, *, confirmed: bool = False) -> Verdict:
    """Decide one event; an applied one is folded into ``state``.

    ``confirmed``: a redemption central itself confirmed online against the balance (a
    hold of this terminal carries the event's id); the offline caps do not bound it, since
    no terminal decided it alone. Every other rule still applies.
    """
    pol = state.policy
    pts = ev.points
    if ev.kind == "adjust":
        return _held("adjust events come only from store IT, not from a terminal")
    if ev.kind == "earn" and pts < 0:
        return _held("earn with negative points")
    if ev.kind in ("redeem", "expire") and pts > 0:
        return _held(f"{ev.kind} with positive points")
    if abs(pts) > pol.max_event_points:
        return _held(f"{abs(pts)} points is over the per-event cap of {pol.max_event_points}")
    member = state.members.get(ev.member_id)
    if member is None:
        return _held("unknown member")
    if ev.kind == "earn" and state.day_earned + pts > pol.max_terminal_day_earn:
        return _held(f"terminal's daily earn cap of {pol.max_terminal_day_earn} points reached")
    sale: SaleFacts | None = None
    cover: RefundFacts | None = None
    if ev.kind == "reversal" and pts > 0 and ev.txn_ref.endswith(COVER_MARK):
        cover = state.refunds.get((ev.member_id, ev.txn_ref.removesuffix(COVER_MARK)))
        left = cover.taken - cover.covered if cover else 0
        if cover is None or pts > left:
            return _held(f"credit of {pts} for spent points is more than the {left} points "
                         "the refund took back and not yet paid for")
    elif ev.kind == "reversal":
        ref = sale_ref(ev.txn_ref)
        sale = state.sales.get((ev.member_id, ref)) if ref else None
        if sale is None or (sale.earned == 0 and sale.redeemed == 0):
            return _held("reversal does not reference a sale of this member")
        if pts > sale.redeemed - sale.recredited:
            return _held(f"re-credit of {pts} is more than the {sale.redeemed - sale.recredited}"
                         " points redeemed on the sale and not yet given back")
    short = 0
    after = member.balance + pts
    if pts < 0:
        if (not pol.debit_other_stores and member.stores
                and state.store_id not in member.stores):
            return _held(f"debit at store {state.store_id}, where the member never shopped")
        short = max(0, -after) - max(0, -member.balance)
        capped = short > 0 and not confirmed
        if capped and (member.overdraft_here + short > pol.offline_member_cap
                       or state.terminal_overdraft + short > pol.offline_terminal_budget):
            return _held(f"takes the balance {short} points below what the member has, beyond "
                         f"the offline caps (member {pol.offline_member_cap}, terminal "
                         f"{pol.offline_terminal_budget})")
    member.balance = after
    member.stores.add(state.store_id)
    member.overdraft_here += short
    state.terminal_overdraft += short
    if ev.kind == "earn":
        state.day_earned += pts
    if sale is not None and pts > 0:
        sale.recredited += pts
    if cover is not None:
        cover.covered += pts
    return Verdict("applied", short=short, balance_after=after)


def note_sale(state: BatchState, ev: Event) -> None:
    """Remember an applied earn/redeem of this batch, so a later reversal can find its sale,
    and what a refund took back, so its cover credit can be bounded."""
    if ev.kind == "reversal" and ev.points < 0:
        state.refunds.setdefault((ev.member_id, ev.txn_ref), RefundFacts()).taken += -ev.points
    elif ev.kind == "earn":
        state.sales.setdefault((ev.member_id, ev.txn_ref), SaleFacts()).earned += ev.points
    elif ev.kind == "redeem" and ev.txn_ref.endswith("/redeem"):
        key = (ev.member_id, ev.txn_ref.removesuffix("/redeem"))
        state.sales.setdefault(key, SaleFacts()).redeemed += -ev.points
