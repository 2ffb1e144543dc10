"""Bodies of the sales push: bounded and strict, like the ledger push (a 422 names the field).

The figures are a terminal's word: they feed reports and the program dry run, never a
balance, so central checks their shape and bounds, not their arithmetic.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from pos_loyalty.server.schemas import MAX_POINTS, Id, TerminalTime

MAX_RECORDS = 1000
MAX_LINES = 200  # the POS protocol's basket cap
MAX_MONEY = 10**15  # 200 lines x 10,000 units x 10**9 per unit, rounded up
MAX_QTY = 10**9
NO_NUL = r"^[^\x00]*$"  # a till's text as it typed it; PostgreSQL holds anything but NUL

TillText = Annotated[str, StringConstraints(max_length=64, pattern=NO_NUL)]
TillId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=NO_NUL)]
Money = Annotated[int, Field(ge=0, le=MAX_MONEY)]
Points = Annotated[int, Field(ge=0, le=MAX_POINTS)]


class SaleLineCreate(BaseModel):
    """One basket line; a refund's line is what went back (all figures non-negative)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    sku: TillId
    category: TillText = ""
    qty: Annotated[int, Field(ge=1, le=MAX_QTY)]
    amount: Money
    discount: Money = 0
    points: Points = 0


class SaleRecordCreate(BaseModel):
    """A sale, refund or void as the terminal recorded it; key: (pos_id, txn_id, kind,
    refund_id) within the pushing terminal."""

    model_config = ConfigDict(extra="forbid", strict=True)
    kind: Literal["sale", "refund", "void"]
    pos_id: TillId
    txn_id: TillId
    refund_id: Annotated[str, StringConstraints(max_length=64, pattern=NO_NUL)] = ""
    member_id: Id | None = None
    terminal_time: TerminalTime
    basket_total: Money
    discount_total: Money = 0
    paid_total: Money = 0
    points_earned: Points = 0
    points_redeemed: Points = 0
    points: Annotated[int, Field(ge=-MAX_POINTS, le=MAX_POINTS)] = 0
    coupons: Annotated[list[TillId], Field(max_length=50)] = []
    lines: Annotated[list[SaleLineCreate], Field(max_length=MAX_LINES)] = []

    @model_validator(mode="after")
    def _refund_id(self) -> SaleRecordCreate:
        if (self.kind == "refund") != bool(self.refund_id):
            raise ValueError("refund_id: a refund needs one, a sale or void must not have one")
        return self


class SalesPushCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    records: Annotated[list[SaleRecordCreate], Field(max_length=MAX_RECORDS)]


class SaleResultPublic(BaseModel):
    index: int = Field(description="Position of the record in the pushed list.")
    status: Literal["stored", "duplicate", "conflict"] = Field(description=(
        "stored: new; duplicate: already stored with the same content; conflict: the key "
        "is known with other content, the new body is kept for review, nothing replaced."))


class SalesPushPublic(BaseModel):
    results: list[SaleResultPublic]
    stored: int
    duplicates: int
    conflicts: int
    server_time: datetime
