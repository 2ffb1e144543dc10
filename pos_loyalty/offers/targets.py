"""Who an offer is for: pure predicates over what central knows of a member.

A target is a conjunction: every condition it names must hold (a target with none matches
nobody, so a file cannot blast the whole base by leaving the target out). Facts are values
(the member's purchases, stage, segments, birthday); the queries that gather them live in
:mod:`pos_loyalty.server.offers`. No clock here: the day is an argument.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from fnmatch import fnmatchcase


@dataclass(frozen=True)
class Purchase:
    """One basket line of a member's sale at central: the day, the item (SKU) and its
    category, as the till sent them."""

    day: date
    sku: str
    category: str = ""


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
    """"Bought ``category`` [an item whose SKU matches ``sku``] in the last ``days`` days".

    Sizes, colours and other attributes of an item are part of its SKU (``DRESS-G10``), the
    only item detail central keeps, so an attribute is a glob over the SKU (``*-G10``);
    either may be empty, not both. Both compare case-blind.
    """

    category: str = ""
    sku: str = ""
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

    def matches(self, m: MemberFacts, today: date) -> bool:
        if self.empty:
            return False
        if self.segments and not in_segments(m.segments, self.segments):
            return False
        if self.stages and norm(m.stage or "none") not in {norm(s) for s in self.stages}:
            return False
        if self.bought is not None and not bought(m.purchases, self.bought, today):
            return False
        return not (self.birthday_this_month and not birthday_in_month(m.birthday, today))


def norm(name: str) -> str:
    """A segment or stage name as the insight module spells it: "Lapsed regular" ->
    "lapsed_regular"."""
    return "_".join(name.casefold().replace("-", " ").split())


def in_segments(held: Iterable[str], wanted: Sequence[str]) -> bool:
    """The member is in at least one wanted segment (names compared by :func:`norm`)."""
    have = {norm(s) for s in held}
    return any(norm(w) in have for w in wanted)


def bought(purchases: Iterable[Purchase], rule: Bought, today: date) -> bool:
    """A purchase of the category, with a matching SKU, on a day within the window
    (``today`` and the ``days - 1`` days before it)."""
    since = today - timedelta(days=rule.days - 1)
    want = rule.category.casefold()
    pattern = rule.sku.casefold()
    for p in purchases:
        if not since <= p.day <= today:
            continue
        if want and p.category.casefold() != want:
            continue
        if not pattern or fnmatchcase(p.sku.casefold(), pattern):
            return True
    return False


def birthday_in_month(birthday: date | None, today: date) -> bool:
    """The member's birthday falls in ``today``'s month."""
    return birthday is not None and birthday.month == today.month


def within_cap(issued_recently: int, times: int) -> bool:
    """Whether a member who got the offer ``issued_recently`` times in the cap's window may
    get it again (at most ``times`` per window)."""
    return issued_recently < times


def matching(members: Iterable[MemberFacts], target: Target, today: date) -> list[MemberFacts]:
    """The members the target selects (each tested once: a run counts and caps these)."""
    return [m for m in members if target.matches(m, today)]


def select(matched: Iterable[MemberFacts], issued_recently: Mapping[str, int],
           times: int) -> list[str]:
    """Of the matched members, those the frequency cap allows, in member id order."""
    return sorted(m.member_id for m in matched
                  if within_cap(issued_recently.get(m.member_id, 0), times))
