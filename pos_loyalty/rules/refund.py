"""Returns: reverse exactly what a sale did on the returned lines. Pure.

The sale's stored ``Quote`` says, line by line, what was discounted, redeemed, earned and
stamped. A return of ``q`` of a line's ``Q`` units takes back the cumulative share
``ceil(x * returned / Q)`` of points and stamps (the store never leaves points behind on
returned goods) and gives back ``floor(x * returned / Q)`` of money and redeemed points;
once every unit is back, the totals are exactly the sale's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pos_loyalty.errors import RulesError
from pos_loyalty.rules.model import LedgerEntry, MemberView, Quote
from pos_loyalty.rules.program import Program

COVER_MARK = "/cover"
"""Suffix of the ``txn_ref`` of the credit for spent points paid from a refund's money: a
positive reversal central bounds by what the same refund took back."""


@dataclass(frozen=True)
class ReturnLine:
    """Units of one sku brought back (as in the till's ``refund`` message)."""

    sku: str
    qty: int


@dataclass(frozen=True)
class RefundResult:
    """What a return does to money, points and stamps, with the ledger entries to write."""

    points_reversed: int        # earned points taken back
    points_recredited: int      # redeemed points given back
    stamps: tuple[tuple[str, int], ...]  # signed change per card (negative: taken back)
    money_refund: int           # money handed back, after any deduction
    spend_reversed: int         # qualifying spend to take off lifetime / period spend
    deducted: int               # money kept back to pay for points already spent
    points_owed: int            # points the balance is left short (negative_balance policy)
    balance_after: int
    returned_after: tuple[tuple[str, int], ...]  # sku -> units returned so far, to store
    entries: tuple[LedgerEntry, ...]
    text: str


def _ceil_share(x: int, q: int, total: int) -> int:
    return -((-x * q) // total)


def refund(sale: Quote, returned: Sequence[ReturnLine], member: MemberView, program: Program,
           *, ref: str = "", already_returned: Mapping[str, int] | None = None) -> RefundResult:
    """Reverse the points, stamps and redemption of the returned units of ``sale``.

    ``already_returned`` (sku -> units) comes from earlier refunds of the same sale, so a
    sale refunded in several parts reverses, in total, exactly what it earned.
    """
    prev = dict(already_returned or {})
    asked: dict[str, int] = {}
    for rl in returned:
        if rl.qty <= 0:
            raise RulesError(f"return of {rl.sku}: quantity must be positive, got {rl.qty}")
        asked[rl.sku] = asked.get(rl.sku, 0) + rl.qty
    sold: dict[str, int] = {}
    for e in sale.effects:
        sold[e.sku] = sold.get(e.sku, 0) + e.qty
    for sku, q in asked.items():
        if q + prev.get(sku, 0) > sold.get(sku, 0):
            raise RulesError(f"cannot return {q} x {sku}: {sold.get(sku, 0)} sold, "
                             f"{prev.get(sku, 0)} already returned")
    reversed_pts = recredit = money_back = 0
    stamps: dict[str, int] = {}
    # units of a sku are taken from the sale's lines in order: earlier returns used the
    # first units, this return takes the next ones
    offset: dict[str, int] = {}
    for e in sale.effects:
        line_start = offset.get(e.sku, 0)
        offset[e.sku] = line_start + e.qty
        if e.sku not in asked:
            continue
        p = prev.get(e.sku, 0)
        lo = min(max(p - line_start, 0), e.qty)
        hi = min(max(p + asked[e.sku] - line_start, 0), e.qty)
        if hi <= lo:
            continue
        reversed_pts += _ceil_share(e.points, hi, e.qty) - _ceil_share(e.points, lo, e.qty)
        recredit += e.redeem_points * hi // e.qty - e.redeem_points * lo // e.qty
        money_back += e.paid * hi // e.qty - e.paid * lo // e.qty
        for card, n in e.stamps:
            d = _ceil_share(n, hi, e.qty) - _ceil_share(n, lo, e.qty)
            stamps[card] = stamps.get(card, 0) - d
    spend_reversed = money_back
    balance = member.balance + recredit - reversed_pts
    deducted = covered = 0
    rate = program.rate
    if balance < 0 and program.returns.spent_points == "deduct_from_refund":
        covered = min(-balance, money_back * rate.points // rate.value)
        deducted = min(money_back, -((-covered * rate.value) // rate.points))
        money_back -= deducted
        balance += covered
    ref = ref or "refund"
    entries: list[LedgerEntry] = []
    if recredit:
        entries.append(LedgerEntry(member.member_id, "reversal", recredit, ref,
                                   "redeemed points given back"))
    if reversed_pts:
        entries.append(LedgerEntry(member.member_id, "reversal", -reversed_pts, ref,
                                   "points of returned goods taken back"))
    if covered:
        entries.append(LedgerEntry(member.member_id, "reversal", covered, ref + COVER_MARK,
                                   f"spent points paid from the refund ({deducted} minor)"))
    after = dict(prev)
    for rl in returned:
        after[rl.sku] = after.get(rl.sku, 0) + rl.qty
    parts = [f"-{reversed_pts} pts" if reversed_pts else "",
             f"+{recredit} pts back" if recredit else "",
             f"{deducted / 100:.2f} kept for spent points" if deducted else "",
             f"balance {balance}" if balance < 0 else ""]
    return RefundResult(
        points_reversed=reversed_pts,
        points_recredited=recredit,
        stamps=tuple(sorted((c, v) for c, v in stamps.items() if v)),
        money_refund=money_back,
        spend_reversed=spend_reversed,
        deducted=deducted,
        points_owed=max(0, -balance),
        balance_after=balance,
        returned_after=tuple(sorted(after.items())),
        entries=tuple(entries),
        text=", ".join(p for p in parts if p) or "no points to reverse",
    )
