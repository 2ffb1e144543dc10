"""Values the rules engine takes and returns. All money is integer minor units."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from pos_loyalty.errors import RulesError


@dataclass(frozen=True)
class BasketLine:
    """One line of the till's basket."""

    sku: str
    qty: int
    unit_price: int
    category: str = ""

    def __post_init__(self) -> None:
        if not self.sku:
            raise RulesError("basket line has no sku")
        if self.qty <= 0:
            raise RulesError(f"line {self.sku}: quantity must be positive, got {self.qty}")
        if self.unit_price < 0:
            raise RulesError(f"line {self.sku}: unit price must not be negative")

    @property
    def amount(self) -> int:
        return self.qty * self.unit_price


@dataclass(frozen=True)
class Basket:
    """What the till is about to sell, as the till sent it."""

    lines: tuple[BasketLine, ...]
    merchant_id: str = ""

    @property
    def total(self) -> int:
        return sum(line.amount for line in self.lines)


@dataclass(frozen=True)
class MemberView:
    """What the engine may know of a member: a snapshot taken from the store."""

    member_id: str
    balance: int = 0
    tier: str | None = None
    lifetime_spend: int = 0
    visits: int = 0
    birthday: date | None = None
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class QuoteLine:
    """One explainable effect of a program on the sale."""

    program: str
    kind: Literal["discount", "points"]
    value: int
    text: str


@dataclass(frozen=True)
class Quote:
    """The engine's answer: discounts (minor units) and points, each line explained."""

    lines: tuple[QuoteLine, ...]
    basket_total: int

    @property
    def discount_total(self) -> int:
        return sum(line.value for line in self.lines if line.kind == "discount")

    @property
    def points_total(self) -> int:
        return sum(line.value for line in self.lines if line.kind == "points")

    @property
    def total_due(self) -> int:
        return self.basket_total - self.discount_total

    @property
    def summary(self) -> str:
        """The one line the till shows: '+12 pts (1 pt per 1.00) - 10% member discount'."""
        return " - ".join(line.text for line in self.lines) or "no loyalty effect"
