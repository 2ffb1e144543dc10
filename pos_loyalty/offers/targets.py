"""Who an offer is for: pure predicates over what central knows of a member.

A target is a conjunction: every condition it names must hold (a target with none matches
nobody, so a file cannot blast the whole base by leaving the target out). Facts are values
(the member's purchases, stage, segments, birthday); the queries that gather them live in
:mod:`pos_loyalty.server.offers`. No clock here: the day is an argument.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta


@dataclass(frozen=True)
class Purchase:
    """One basket line of a member's sale at central: the shop's day, the item, its category
    and the item's attributes (``size = "10"``)."""

    day: date
    sku: str
    category: str = ""
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MemberFacts:
    """What targeting may know of a member: no contact data, the birthday's month and day."""

    member_id: str
    birthday: date | None = None
    stage: str | None = None
    segments: frozenset[str] = frozenset()
    purchases: tuple[Purchase, ...] = ()


@dataclass(frozen=True)
class Bought:
    """"Bought ``category`` (with these attributes) in the last ``days`` days" (an empty
    category: any item with the attributes)."""

    category: str = ""
    attributes: tuple[tuple[str, str], ...] = ()
    days: int = 90


@dataclass(frozen=True)
class Target:
    """An offer's target; every condition given must hold."""

    segments: tuple[str, ...] = ()   # the member is in any of these segments
    stages: tuple[str, ...] = ()     # the member's journey stage is one of these
    bought: Bought | None = None
    birthday_this_month: bool = False

    @property
    def empty(self) -> bool:
        return not (self.segments or self.stages or self.bought or self.birthday_this_month)

    @property
    def needs_sales(self) -> bool:
        """Whether the target reads sales (purchases, stage or segments) or only members."""
        return bool(self.segments or self.stages or self.bought)

    def matches(self, m: MemberFacts, today: date) -> bool:
        if self.empty:
            return False
        if self.segments and not in_segments(m.segments, self.segments):
            return False
        if self.stages and m.stage not in self.stages:
            return False
        if self.bought is not None and not bought(m.purchases, self.bought, today):
            return False
        return not (self.birthday_this_month and not birthday_in_month(m.birthday, today))


def in_segments(held: Iterable[str], wanted: Sequence[str]) -> bool:
    """The member is in at least one wanted segment (names compared case-blind)."""
    have = {s.casefold() for s in held}
    return any(w.casefold() in have for w in wanted)


def bought(purchases: Iterable[Purchase], rule: Bought, today: date) -> bool:
    """A purchase of the category, with every attribute, on a day within the window
    (``today`` and the ``days - 1`` days before it)."""
    since = today - timedelta(days=rule.days - 1)
    want = rule.category.casefold()
    for p in purchases:
        if not since <= p.day <= today:
            continue
        if want and p.category.casefold() != want:
            continue
        if all(p.attributes.get(k, "").casefold() == v.casefold() for k, v in rule.attributes):
            return True
    return False


def birthday_in_month(birthday: date | None, today: date) -> bool:
    """The member's birthday falls in ``today``'s month."""
    return birthday is not None and birthday.month == today.month


def within_cap(issued_recently: int, times: int) -> bool:
    """Whether a member who got the offer ``issued_recently`` times in the cap's window may
    get it again (at most ``times`` per window)."""
    return issued_recently < times


def select(members: Iterable[MemberFacts], target: Target, today: date,
           issued_recently: Mapping[str, int], times: int) -> list[str]:
    """The members the target selects and the frequency cap allows, in member id order."""
    return sorted(m.member_id for m in members
                  if target.matches(m, today)
                  and within_cap(issued_recently.get(m.member_id, 0), times))
