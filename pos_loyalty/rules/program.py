"""A store's loyalty program as values: the rules it runs and how they stack.

Parsing the TOML file lives in ``pos_loyalty.rules.parse``; this module only holds the
shapes the engine reads. Every rule is one ``Rule`` with a ``kind`` and the parameters that
kind uses (the others keep their neutral defaults).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

RuleKind = Literal[
    "earn", "multiplier", "bonus", "discount", "progressive", "threshold", "stamps", "tiers",
    "coupon", "credit", "membership", "instant_win", "referral", "perk",
]
RULE_KINDS: tuple[str, ...] = (
    "earn", "multiplier", "bonus", "discount", "progressive", "threshold", "stamps", "tiers",
    "coupon", "credit", "membership", "instant_win", "referral", "perk",
)
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


@dataclass(frozen=True)
class Level:
    """One tier level: what qualifies for it and what it gives."""

    name: str
    min_spend: int = 0
    min_visits: int = 0
    earn_percent: int = 100
    perks: tuple[str, ...] = ()


@dataclass(frozen=True)
class Prize:
    """One instant-win prize: chance 1 in ``one_in``, at most ``budget`` awarded."""

    name: str
    one_in: int
    value: int = 0
    budget: int = 0  # 0 = unlimited


@dataclass(frozen=True)
class Rule:
    """One configured mechanic. ``kind`` says which parameters matter."""

    id: str
    kind: RuleKind
    label: str
    group: str
    when: Conditions = Conditions()
    # earn
    points: int = 0
    per: int = 0
    per_item: int = 0
    per_visit: int = 0
    multipliers: tuple[tuple[str, int], ...] = ()  # category or sku -> percent
    # multiplier / membership / tiers
    percent: int = 0  # earn percent for multipliers (200 = x2)
    # discount family (basis points, 1000 = 10%) and fixed amounts
    discount_bp: int = 0
    amount: int = 0
    by_tier: tuple[tuple[str, int], ...] = ()
    scale: tuple[tuple[int, int], ...] = ()  # (from spend, bp) ascending
    basis: Literal["lifetime", "period"] = "lifetime"
    # threshold
    every: int = 0
    coupon: str = ""
    perk: str = ""
    # stamps
    card: str = ""
    stamp_per: Literal["item", "visit"] = "item"
    free: Literal["cheapest", "dearest"] = "cheapest"
    # tiers
    levels: tuple[Level, ...] = ()
    period_months: int = 12
    downgrade: Literal["one_level", "requalify", "never"] = "one_level"
    # coupon
    code: str = ""
    bound: Literal["member", "segment", "anyone"] = "member"
    uses: int = 1
    # credit
    max_per_sale: int = 1
    # membership
    plan: str = ""
    fee_sku: str = ""
    valid_days: int = 365
    perks: tuple[str, ...] = ()
    # instant win
    prizes: tuple[Prize, ...] = ()
    # referral
    referee_points: int = 0
    referrer_points: int = 0
    # earn / stamps: whether 0.00 lines (a free bag, a free coffee) earn per item
    free_items: bool = False
    # threshold: what one issued coupon or perk costs the store (minor units), for the cost
    value: int = 0
    # the program (file) this rule came from, shown on its quote lines
    program: str = ""


@dataclass(frozen=True)
class Tax:
    """How the till's prices relate to tax, and where discounts and points sit."""

    rate_bp: int = 0
    prices_include_tax: bool = True
    discounts: Literal["before_tax", "after_tax"] = "before_tax"
    earn_on: Literal["gross", "net"] = "gross"


@dataclass(frozen=True)
class Stacking:
    """Which discounts combine: group modes, exclusive sets, order, an overall cap."""

    order: tuple[str, ...] = ()
    modes: tuple[tuple[str, Literal["combine", "best_of"]], ...] = ()
    exclusive: tuple[tuple[str, ...], ...] = ()
    compound: bool = True
    max_discount_bp: int = 10000

    def mode(self, group: str) -> Literal["combine", "best_of"]:
        for name, mode in self.modes:
            if name == group:
                return mode
        return "combine"


@dataclass(frozen=True)
class CatalogItem:
    """Something points buy that is not money off: a product, a service, an experience."""

    code: str
    points: int
    text: str


@dataclass(frozen=True)
class Redemption:
    """Points to money: ``points`` points are worth ``value`` minor units."""

    points: int = 100
    value: int = 100
    min_points: int = 0
    max_points: int = 0  # 0 = no cap
    max_percent: int = 100
    step: int = 1
    partial: bool = True
    earn_on_redeemed: bool = False
    catalog: tuple[CatalogItem, ...] = ()

    def value_of(self, points: int) -> int:
        """Money for ``points`` (floor: a redemption never gives more than the rate)."""
        return points * self.value // self.points

    def liability(self, points: int) -> int:
        """Money the store owes for ``points`` outstanding (half up)."""
        return (2 * points * self.value + self.points) // (2 * self.points)


@dataclass(frozen=True)
class Expiry:
    """Points validity: rolling (N months after earning) or fixed (a day of the year)."""

    mode: Literal["none", "rolling", "fixed"] = "none"
    months: int = 12
    on: tuple[int, int] = (12, 31)  # month, day for fixed
    warn_days: int = 30


@dataclass(frozen=True)
class Returns:
    """What a refund does when the points it must take back were already spent."""

    spent_points: Literal["deduct_from_refund", "negative_balance"] = "deduct_from_refund"


@dataclass(frozen=True)
class Partner:
    """A coalition member shop."""

    merchant_id: str
    name: str = ""


@dataclass(frozen=True)
class Coalition:
    """Partner shops sharing one points currency; settled at the redemption rate."""

    name: str = ""
    partners: tuple[Partner, ...] = ()
    fee_bp: int = 0


def _default_rules(name: str, points_per_unit: int, unit_minor: int) -> tuple[Rule, ...]:
    unit = f"{unit_minor // 100}.{unit_minor % 100:02d}"
    return (
        Rule(id="points", kind="earn", label=f"{points_per_unit} per {unit}", group="points",
             points=points_per_unit, per=unit_minor, program=name),
    )


@dataclass(frozen=True)
class Program:
    """The mechanics a store runs, in the order it declared them.

    ``Program()`` and ``Program(points_per_unit=2)`` still build the simple points program
    of the first version: when ``rules`` is not given, one earn rule is made from
    ``points_per_unit`` and ``unit_minor``.
    """

    name: str = "Default points"
    points_per_unit: int = 1
    unit_minor: int = 100  # one currency unit in minor units (100 cents)
    rules: tuple[Rule, ...] | None = None
    tax: Tax = Tax()
    stacking: Stacking = Stacking()
    redemption: Redemption | None = None
    expiry: Expiry = Expiry()
    returns: Returns = Returns()
    coalition: Coalition | None = None
    source: str = ""
    timezone: str = ""  # IANA name of the shop's zone; "" = UTC
    currency: str = ""  # ISO 4217 code; only currencies with 2 minor-unit digits are accepted
    tier_names: tuple[str, ...] = ()  # card classes given centrally, when no tiers rule
    _rules: tuple[Rule, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rules = self.rules
        if rules is None:
            rules = _default_rules(self.name, self.points_per_unit, self.unit_minor)
        object.__setattr__(self, "_rules", tuple(
            r if r.program else replace(r, program=self.name) for r in rules))

    @property
    def active_rules(self) -> tuple[Rule, ...]:
        return self._rules

    @property
    def rate(self) -> Redemption:
        """The redemption rate (also used to value points liability); 100 pts = 1.00."""
        return self.redemption or Redemption()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone or "UTC")

    def local(self, now: datetime) -> datetime:
        """``now`` as the shop's wall-clock time (naive).

        An aware time is converted to the program's ``timezone``; a naive time is taken to be
        shop-local already (the ``quote --now`` form), so the till and the CLI agree.
        """
        if now.tzinfo is None:
            return now
        return now.astimezone(self.zone).replace(tzinfo=None)

    def rule(self, rule_id: str) -> Rule | None:
        for rule in self._rules:
            if rule.id == rule_id:
                return rule
        return None

    def tier_levels(self) -> tuple[str, ...]:
        """The tier names this program knows: its tiers rule's levels, else ``tier_names``."""
        rule = self.tiers()
        return tuple(lv.name for lv in rule.levels) if rule else self.tier_names

    def tiers(self) -> Rule | None:
        for rule in self._rules:
            if rule.kind == "tiers":
                return rule
        return None


DEFAULT_PROGRAM = Program()


def combine_programs(programs: Sequence[Program], *, name: str = "") -> Program:
    """Several programs active at once (a store's base program plus campaigns) as one.

    Rules run in the given order and keep their program's name on their quote lines;
    stacking orders, group modes and exclusive sets are joined; tax, redemption, expiry,
    returns and coalition come from the first program that sets them. Rule ids must be
    unique across the programs (a ConfigError names the clash).
    """
    from pos_loyalty.errors import ConfigError

    if not programs:
        return DEFAULT_PROGRAM
    seen: dict[str, str] = {}
    rules: list[Rule] = []
    for p in programs:
        for r in p.active_rules:
            if r.id in seen:
                raise ConfigError(f"rule id {r.id!r} is used by both {seen[r.id]!r} and "
                                  f"{p.name!r}", path=p.source or None, key="rule.id")
            seen[r.id] = p.name
            rules.append(r if r.program else replace(r, program=p.name))
    if sum(1 for r in rules if r.kind == "tiers") > 1:
        raise ConfigError("only one of the combined programs may define tiers")
    first = programs[0]
    stacking = Stacking(
        order=tuple(g for p in programs for g in p.stacking.order),
        modes=tuple(m for p in programs for m in p.stacking.modes),
        exclusive=tuple(e for p in programs for e in p.stacking.exclusive),
        compound=first.stacking.compound,
        max_discount_bp=min(p.stacking.max_discount_bp for p in programs),
    )
    return Program(
        name=name or " + ".join(p.name for p in programs),
        rules=tuple(rules),
        tax=first.tax,
        stacking=stacking,
        redemption=next((p.redemption for p in programs if p.redemption), None),
        expiry=next((p.expiry for p in programs if p.expiry.mode != "none"), Expiry()),
        returns=first.returns,
        coalition=next((p.coalition for p in programs if p.coalition), None),
        source=first.source,
        timezone=next((p.timezone for p in programs if p.timezone), ""),
        currency=first.currency,
        tier_names=tuple(dict.fromkeys(t for p in programs for t in p.tier_names)),
    )


def in_timezone(program: Program, timezone: str) -> Program:
    """The program run in ``timezone`` (the terminal's configured zone wins over the file's)."""
    if not timezone or timezone == program.timezone:
        return program
    return replace(program, timezone=timezone)


def parse_program(text: str, *, path: str = "<program>") -> Program:
    """Parse program TOML text; errors name the file, key and line."""
    from pos_loyalty.rules.parse import parse_text

    return parse_text(text, path=path)


def load_program(path: str | Path) -> Program:
    """Read and parse a program file; an unreadable file is a ConfigError too."""
    from pos_loyalty.errors import ConfigError

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read program file: {exc.strerror}", path=str(p)) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"program file is not UTF-8 text: {exc.reason}", path=str(p)) from exc
    return parse_program(text, path=str(p))
