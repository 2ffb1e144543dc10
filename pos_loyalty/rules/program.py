"""A store's loyalty program as values: the rules it runs and how they stack.

Parsing the TOML file lives in ``pos_loyalty.rules.parse``; each rule is an instance of its
kind's class (``pos_loyalty.rules.kinds``); this module holds the program-wide settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from pos_loyalty.errors import ConfigError
from pos_loyalty.rules.kinds import Coupon, Earn, Progressive, Rule, Tiers


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
        Earn(id="points", label=f"{points_per_unit} per {unit}", group="points",
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

    def tiers(self) -> Tiers | None:
        return next((r for r in self._rules if isinstance(r, Tiers)), None)

    def lifetime_steps(self) -> tuple[int, ...]:
        """The lifetime-spend marks where a progressive discount changes step."""
        return tuple(sorted({start for r in self._rules
                             if isinstance(r, Progressive) and r.basis == "lifetime"
                             for start, _ in r.scale}))

    def personal_coupons(self) -> frozenset[str]:
        """Codes of coupons held by members (uses counted down), not open offers."""
        return frozenset(r.code for r in self._rules
                         if isinstance(r, Coupon) and r.bound == "member")


DEFAULT_PROGRAM = Program()


def combine_programs(programs: Sequence[Program], *, name: str = "") -> Program:
    """Several programs active at once (a store's base program plus campaigns) as one.

    Rules run in the given order and keep their program's name on their quote lines;
    stacking orders, group modes and exclusive sets are joined; tax, redemption, expiry,
    returns and coalition come from the first program that sets them. Rule ids must be
    unique across the programs (a ConfigError names the clash).
    """
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
    if sum(1 for r in rules if isinstance(r, Tiers)) > 1:
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
