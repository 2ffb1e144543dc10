"""Request and response bodies of the HTTP API (pydantic): Create in, Public out.

Every field that comes from outside is bounded (lengths, integer ranges, batch size), so a
body either validates or gets a 422 that says which field is wrong.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

MAX_BATCH = 5000
MAX_POINTS = 10**12  # far above any real balance, far below int64
MAX_INT64 = 2**63 - 1

# Ids: letters, digits and . _ : @ + - (no spaces, slashes or control characters), so an id
# can go into a log line, a URL or a file name as it is.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@+\-]*$"
# Free text from a terminal (txn_ref): printable, no control characters.
TEXT_PATTERN = r"^[^\x00-\x1f\x7f]*$"

Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=ID_PATTERN)]
EventId = Annotated[str, StringConstraints(min_length=1, max_length=36, pattern=ID_PATTERN)]


def _naive_utc(value: datetime) -> datetime:
    """Any parsed time to naive UTC; one whose UTC value falls outside years 1..9999 is
    outside the documented range (a 422, not an overflow deep in the server)."""
    if value.tzinfo is None:
        return value
    try:
        return value.astimezone(UTC).replace(tzinfo=None)
    except OverflowError as exc:
        raise ValueError("time is outside the supported range (years 1 to 9999 in UTC)") from exc


TerminalTime = Annotated[datetime, AfterValidator(_naive_utc)]


class EnrollCreate(BaseModel):
    """The one-time code printed by ``pos-loyalty admin terminal add``."""

    model_config = ConfigDict(extra="forbid", strict=True)
    code: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=TEXT_PATTERN)]


class EnrollPublic(BaseModel):
    terminal_id: str
    store_id: str
    credential: str = Field(description="Shown once; send as 'Authorization: Bearer ...'.")
    server_time: datetime


class LedgerEventCreate(BaseModel):
    """One ledger event; ``points`` is the signed change to the member's balance.

    Strict: an integer field takes only a JSON integer (not ``"5"``, ``5.0`` or ``true``).
    ``terminal_time`` is ISO 8601, with or without an offset, any date whose UTC value lies
    in years 1..9999: a wrong terminal clock is flagged, never refused.
    """

    model_config = ConfigDict(extra="forbid", strict=True)
    event_id: EventId
    terminal_id: Id
    terminal_seq: Annotated[int, Field(ge=1, le=2**62)]
    member_id: Id
    kind: Literal["earn", "redeem", "reversal", "adjust", "expire"]
    points: Annotated[int, Field(ge=-MAX_POINTS, le=MAX_POINTS)]
    txn_ref: Annotated[str, StringConstraints(max_length=140, pattern=TEXT_PATTERN)] = ""
    terminal_time: TerminalTime
    offline: bool = True


class PushCreate(BaseModel):
    """A batch of ledger events in terminal_seq order, and the terminal's clock estimate
    (central minus terminal, ms; any 64-bit value: a terminal booted in 1970 still syncs)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    events: Annotated[list[LedgerEventCreate], Field(max_length=MAX_BATCH)]
    clock_offset_ms: Annotated[int, Field(ge=-MAX_INT64, le=MAX_INT64)] | None = None


class EventResultPublic(BaseModel):
    event_id: str
    terminal_seq: int
    status: Literal["stored", "held", "duplicate", "conflict"] = Field(description=(
        "stored: applied; held: stored, not applied until store IT releases it; duplicate: "
        "already stored with the same content; conflict: the id is repeated in the batch "
        "or known with other content, nothing stored, listed for review."))
    flags: str = Field("", description="Comma-separated: future, clock, seq_gap, seq_reuse.")
    reason: str = Field("", description="Why an event is held or in conflict.")


class PushPublic(BaseModel):
    results: list[EventResultPublic]
    acked_seq: int = Field(description="Highest sequence up to which central has every event.")
    overdrafts: int
    held: int = 0
    conflicts: int = 0
    server_time: datetime = Field(description="Central's clock, with its UTC offset.")


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


class HealthPublic(BaseModel):
    status: str
    server_time: datetime


class ErrorPublic(BaseModel):
    error: str
    reason: str


Short = Annotated[str, StringConstraints(max_length=40, pattern=TEXT_PATTERN)]
Count = Annotated[int, Field(ge=0, le=MAX_INT64)]


class HeartbeatCreate(BaseModel):
    """A terminal's state, sent with every sync round (every field optional)."""

    model_config = ConfigDict(extra="forbid")
    software_version: Short = ""
    program_name: Annotated[str, StringConstraints(max_length=200, pattern=TEXT_PATTERN)] = ""
    program_version: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None
    reader_state: Short = Field("", description="e.g. ok, absent, error.")
    till_state: Short = Field("", description="e.g. up, down.")
    outbox_depth: Count = 0
    oldest_unsent_at: TerminalTime | None = None
    last_sync_ok_at: TerminalTime | None = None
    clock_offset_ms: Annotated[int, Field(ge=-MAX_INT64, le=MAX_INT64)] | None = None
    last_error: Annotated[str, StringConstraints(max_length=2000)] = ""
    held_count: Count = 0
    conflict_count: Count = 0


class HeartbeatPublic(BaseModel):
    server_time: datetime
