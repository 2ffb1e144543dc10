"""The entities a terminal pulls from central, defined once for both sides.

Central reads each from its table (``server/sync/queries.py`` maps a name to its model) and
the terminal applies each page to its own store (``store/outbox.py``); both take the name,
key and column order from here. A new pulled entity is one more line below plus its table
on each side.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PullEntity:
    """One pulled entity: its name on the wire, its key column and the columns sent."""

    name: str
    key: str
    columns: tuple[str, ...]


PULL_ENTITIES: tuple[PullEntity, ...] = (
    PullEntity("members", "member_id", ("member_id", "display_name", "tier", "birthday",
                                        "status")),
    PullEntity("cards", "card_id", ("card_id", "member_id", "uid", "status")),
    PullEntity("balances", "member_id", ("member_id", "balance")),
    PullEntity("tiers", "tier_id", ("tier_id", "name", "body")),
    PullEntity("programs", "program_id", ("program_id", "store_id", "name", "body",
                                          "version")),
    PullEntity("sun_counters", "uid", ("uid", "counter")),
    PullEntity("offers", "issue_id", ("issue_id", "member_id", "code", "expires_at",
                                      "status")),
    PullEntity("cashier_lines", "member_id", ("member_id", "line", "birthday")),
)

BY_NAME: dict[str, PullEntity] = {e.name: e for e in PULL_ENTITIES}
NAMES: tuple[str, ...] = tuple(BY_NAME)
