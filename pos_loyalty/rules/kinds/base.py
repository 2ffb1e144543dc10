"""What every rule kind shares: its conditions, the sale it works on, and the stage hooks.

A rule kind is a small frozen class named as in the program file (``kind = "earn"`` is
``Earn``), holding that kind's parameters under their TOML names, parsing and validating
them itself (``parse``), and taking part in the quote through the hooks below. The engine
(``pos_loyalty.rules.engine``) runs the stages in order and calls, on each rule that applies,
the hook of that stage; a hook a kind does not override does nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, ClassVar, Literal, Self

from pos_loyalty.rules.amounts import allocate, bp_text, half_up
from pos_loyalty.rules.model import Basket, BasketLine, Credit, MemberView, Perk, QuoteLine
from pos_loyalty.rules.toml import Table

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Conditions:
    """When a rule applies. Empty collections mean 'no restriction'."""

    tiers: frozenset[str] = frozenset()
    segments: frozenset[str] = frozenset()
    merchants: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    skus: frozenset[str] = frozenset()
    exclude_categories: frozenset[str] = frozenset()
    exclude_skus: frozenset[str] = frozenset()
    valid_from: date | None = None
    valid_until: date | None = None
    weekdays: frozenset[int] = frozenset()
    birthday: Literal["", "day", "week", "month"] = ""
    min_spend: int = 0
    membership: str = ""
    limit: Literal["", "day", "year", "once"] = ""

    @property
    def filters_lines(self) -> bool:
        return bool(self.categories or self.skus or self.exclude_categories or self.exclude_skus)


@dataclass(frozen=True, kw_only=True)
class Rule:
    """One configured mechanic: the keys every kind has, and the stage hooks (no-ops here).

    Subclasses set ``KIND`` (the TOML name) and ``KEYS`` (their own keys) and implement
    ``parse``; ``DISCOUNT`` kinds take part in the stacked discount stage.
    """

    KIND: ClassVar[str] = ""
    KEYS: ClassVar[frozenset[str]] = frozenset()
    DISCOUNT: ClassVar[bool] = False

    id: str
    label: str
    group: str
    when: Conditions = Conditions()
    program: str = ""  # the program (file) this rule came from, shown on its quote lines

    @classmethod
    def parse(cls, t: Table, **common: Any) -> Self:
        """The rule from its table; ``common`` holds id, label, group and conditions."""
        raise NotImplementedError

    def tiers_named(self) -> list[tuple[tuple[str, ...], str]]:
        """(key path within the rule, tier name) for every tier the rule names, so the
        parser can check each against the program's levels."""
        return [(("tiers",), t) for t in sorted(self.when.tiers)]

    def refers(self, rules: Sequence[Rule]) -> tuple[tuple[str, ...], str] | None:
        """A reference to another rule of the same file that leads nowhere, as (key path
        within this rule, message): a typo there would silently disable a reward."""
        return None

    def before(self, sale: Sale) -> None:
        """Before the rules are chosen (every rule of the program)."""

    def applies(self, sale: Sale) -> bool:
        """A kind's own condition beyond ``when``."""
        return True

    def lines(self, sale: Sale, idx: list[int]) -> list[int]:
        """The basket lines this rule works on, from those its filters let through."""
        return idx

    def prepare(self, sale: Sale) -> None:
        """After the rules are chosen, before any discount."""

    def discount(self, sale: Sale, amt: list[int], idx: list[int],
                 sub: list[int]) -> Applied | None:
        """The money off lines ``idx`` at amounts ``amt`` (``sub``: theirs only)."""
        return None

    def earn(self, sale: Sale) -> None:
        """Points on what is paid."""

    def multiplier(self, sale: Sale) -> tuple[int, str] | None:
        """An earn percent (200 = x2) on every earn rule's points, with its text."""
        return None

    def reward(self, sale: Sale) -> None:
        """Flat points, coupons, perks, games, after the earn rules and multipliers."""

    def settle(self, sale: Sale) -> None:
        """Last: what the whole sale decides (a tier upgrade)."""


@dataclass
class Applied:
    """A discount a rule would give: per-line amounts plus what it consumes."""

    rule: Rule
    idx: list[int]
    parts: list[int]
    text: str
    free_units: dict[int, int] = field(default_factory=dict)  # stamp card rewards: line ->
    card: str = ""                                            # free units, and the card
    coupon: str = ""
    credits: tuple[tuple[Credit, int], ...] = ()  # each credit with the money it gives
    total: int = 0

    def __post_init__(self) -> None:
        self.total = sum(self.parts)

    def set_parts(self, parts: list[int]) -> None:
        self.parts = parts
        self.total = sum(parts)


Pending = list[tuple[int, list[int], list[int]]]


@dataclass(eq=False)
class Sale:
    """The state the stages pass along (structlog's event dict): plain lists with one slot
    per basket line, so a 200-line basket stays cheap."""

    member: MemberView
    basket: Basket
    today: date
    program_name: str = ""
    all_rules: tuple[Rule, ...] = ()  # every rule of the program, chosen or not
    lines: tuple[BasketLine, ...] = ()
    amounts: list[int] = field(default_factory=list)
    cat_of: list[str] = field(default_factory=list)
    sku_of: list[str] = field(default_factory=list)
    every: list[int] = field(default_factory=list)
    base: list[int] = field(default_factory=list)  # what discounts work on (per line)
    rem: list[int] = field(default_factory=list)   # what is left to pay after discounts
    line_tax: list[int] = field(default_factory=list)
    fee_plans: set[str] = field(default_factory=set)
    rules: list[Rule] = field(default_factory=list)
    qlines: list[QuoteLine] = field(default_factory=list)
    perks: list[Perk] = field(default_factory=list)
    claims: list[str] = field(default_factory=list)
    stamp_units: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    stamp_every: dict[str, int] = field(default_factory=dict)
    consumed_cards: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    coupons_used: list[str] = field(default_factory=list)
    credits_used: list[str] = field(default_factory=list)
    credits_left: list[tuple[str, int]] = field(default_factory=list)
    redeem_val: list[int] = field(default_factory=list)
    redeem_pts: list[int] = field(default_factory=list)
    redeem_points: int = 0
    redeem_note: str = ""
    expired: int = 0
    expiring: int = 0
    expiring_on: date | None = None
    paid: list[int] = field(default_factory=list)
    earn_base: list[int] = field(default_factory=list)
    qualifying: int = 0
    fnum: int = 1
    fden: int = 1
    pend: Pending = field(default_factory=list)
    # earn components: points = floor(sum(weights) * factor / den) over lines idx
    exact: list[tuple[int, int, list[int], list[int]]] = field(default_factory=list)
    _elig: dict[tuple[object, ...], list[int]] = field(default_factory=dict)

    def eligible(self, rule: Rule) -> list[int]:
        """Indices of the lines the rule's product filters (and the kind) let through."""
        w = rule.when
        key = (w.categories, w.skus, w.exclude_categories, w.exclude_skus, type(rule),
               rule.id if type(rule).lines is not Rule.lines else "")
        got = self._elig.get(key)
        if got is None:
            got = rule.lines(self, _filter(w, self.cat_of, self.sku_of, self.every))
            self._elig[key] = got
        return got

    def spend_before(self, basis: str) -> int:
        return self.member.lifetime_spend if basis == "lifetime" else self.member.period_spend

    def add_points(self, rule: Rule, points: int, idx: list[int], weights: list[int],
                   note: str) -> None:
        """A points line; its split across basket lines is done once at the end."""
        if points <= 0:
            return
        self.pend.append((points, idx, weights))
        text = f"+{points} pts {note}".rstrip() if note else f"{rule.label}: +{points} pts"
        self.qlines.append(QuoteLine(rule.program, "points", points, text, rule.id,
                                     label=rule.label))


def _filter(c: Conditions, cat_of: list[str], sku_of: list[str],
            every: list[int]) -> list[int]:
    if not c.filters_lines:
        return every
    cats, skus, xc, xs = c.categories, c.skus, c.exclude_categories, c.exclude_skus
    if cats and skus:
        idx = [i for i in every if cat_of[i] in cats or sku_of[i] in skus]
    elif cats:
        idx = [i for i, cat in enumerate(cat_of) if cat in cats]
    elif skus:
        idx = [i for i, sku in enumerate(sku_of) if sku in skus]
    else:
        idx = every
    if xc:
        idx = [i for i in idx if cat_of[i] not in xc]
    if xs:
        idx = [i for i in idx if sku_of[i] not in xs]
    return idx


def percent_off(rule: Rule, idx: list[int], sub: list[int], bp: int, amount: int,
                label: str, coupon: str = "") -> Applied | None:
    """``bp`` basis points (half up, once on the subtotal) plus a fixed ``amount``, never
    more than the subtotal, spread over the lines by ``allocate``."""
    total = sum(sub)
    d = min(half_up(total * bp, 10000) + amount, total)
    if d <= 0:
        return None
    return Applied(rule, idx, allocate(d, sub), label, coupon=coupon)


def tier_map(t: Table, key: str) -> tuple[tuple[str, int], ...]:
    """``[rule.by_tier]``: tier name -> percent, as basis points, each at most 100%."""
    out = t.int_map(key, t.ctx.to_bp)
    for name, bp in out:
        if bp > 10000:
            raise t.ctx.error((*t.path, key, name), "a discount cannot exceed 100%")
    return out


__all__ = ["WEEKDAYS", "Applied", "Conditions", "Rule", "Sale", "bp_text", "percent_off",
           "tier_map"]
