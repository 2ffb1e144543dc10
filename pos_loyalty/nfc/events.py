"""The one value the reader hands to the terminal for every tap."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TapKind = Literal["member", "product", "refused"]


@dataclass(frozen=True)
class TapEvent:
    """A tag was tapped and read: a member card, a product tag, or a refusal with a reason.

    ``uid`` is upper-case hex. ``verified`` is True only when a signature (or SUN message) over
    the tag's content and UID held. ``reason`` is text a cashier can read (kind == "refused").
    ``read_done`` is ``time.perf_counter()`` when the read finished; ``read_ms`` is the time from
    the tag being discovered to its data being read and classified.
    """

    kind: TapKind
    uid: str
    tag_type: str
    card_id: str | None = None
    product: dict[str, str] | None = None
    verified: bool = False
    reason: str | None = None
    read_done: float = 0.0
    read_ms: float = 0.0
