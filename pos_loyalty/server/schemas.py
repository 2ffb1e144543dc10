"""Request and response bodies of the HTTP API (pydantic): Create in, Public out.

Every field that comes from outside is bounded (lengths, integer ranges, batch size), so a
body either validates or gets a 422 that says which field is wrong.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

MAX_BATCH = 5000
MAX_POINTS = 10**12  # far above any real balance, far below int64

Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]
EventId = Annotated[str, StringConstraints(min_length=1, max_length=36)]


class EnrollCreate(BaseModel):
    """The one-time code printed by ``pos-loyalty admin terminal add``."""

    model_config = ConfigDict(extra="forbid")
    code: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class EnrollPublic(BaseModel):
    terminal_id: str
    store_id: str
    credential: str = Field(description="Shown once; send as 'Authorization: Bearer ...'.")
    server_time: datetime


class LedgerEventCreate(BaseModel):
    """One ledger event; ``points`` is the signed change to the member's balance."""

    model_config = ConfigDict(extra="forbid")
    event_id: EventId
    terminal_id: Id
    terminal_seq: Annotated[int, Field(ge=1, le=2**62)]
    member_id: Id
    kind: Literal["earn", "redeem", "reversal", "adjust", "expire"]
    points: Annotated[int, Field(ge=-MAX_POINTS, le=MAX_POINTS)]
    txn_ref: Annotated[str, StringConstraints(max_length=140)] = ""
    terminal_time: datetime
    offline: bool = True


class PushCreate(BaseModel):
    """A batch of ledger events in terminal_seq order, and the terminal's clock estimate."""

    model_config = ConfigDict(extra="forbid")
    events: Annotated[list[LedgerEventCreate], Field(max_length=MAX_BATCH)]
    clock_offset_ms: Annotated[int, Field(ge=-(10**12), le=10**12)] | None = None


class EventResultPublic(BaseModel):
    event_id: str
    terminal_seq: int
    status: Literal["stored", "duplicate"]
    flags: str = ""


class PushPublic(BaseModel):
    results: list[EventResultPublic]
    acked_seq: int = Field(description="Highest sequence up to which central has every event.")
    overdrafts: int
    server_time: datetime


class HorizonPublic(BaseModel):
    until: int = Field(description="Pass to every pull of this round; rows below it are final.")
    counts: dict[str, int] | None = None
    server_time: datetime


class PullPublic(BaseModel):
    entity: str
    columns: list[str]
    rows: list[list[Any]]
    after: str = Field(description="Cursor for the next pull of this entity.")
    more: bool
    until: int
    server_time: datetime


class ErrorPublic(BaseModel):
    error: str
    reason: str
