"""The cashier's line central chooses from a member's history (pure; the day is an argument).

Rules, in order (the first that speaks wins; each can be switched off in the offers file's
``[cashier]`` table, see docs/offers.md):

1. ``welcome_back``: the last visit was at least ``welcome_back_after_days`` ago ->
   "welcome back: last visit in March" (the year is added when it is not this year);
2. ``usually_buys``: an item bought on at least ``usually_buys_visits`` of the member's visits
   in the history window -> "usually buys oat milk" (the item on most visits; ties by name).

The birthday line is not made here: the terminal makes it at the tap (it depends on the
day), when the ``birthday`` rule is on. A line never holds contact data or a birth date.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from pos_loyalty.offers.file import CashierRules

MAX_LINE = 80
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")


@dataclass(frozen=True)
class Visit:
    """One of the member's sales: its shop day and the names of the items bought."""

    day: date
    items: tuple[str, ...] = ()


def welcome_back(last: date, today: date) -> str:
    when = MONTHS[last.month - 1] + ("" if last.year == today.year else f" {last.year}")
    return f"welcome back: last visit in {when}"


def usual_item(visits: Iterable[Visit], min_visits: int) -> str | None:
    """The item on the most visits, if on at least ``min_visits`` of them."""
    counts: Counter[str] = Counter()
    for v in visits:
        counts.update({i.strip() for i in v.items if i.strip()})
    if not counts:
        return None
    item, n = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return item if n >= min_visits else None


def history_line(visits: Sequence[Visit], today: date, rules: CashierRules) -> str:
    """The member's line from the visits before ``today`` ("" when no rule speaks)."""
    past = [v for v in visits if v.day < today]
    if not past:
        return ""
    last = max(v.day for v in past)
    if rules.welcome_back and (today - last).days >= rules.welcome_back_after_days:
        return welcome_back(last, today)
    if rules.usually_buys:
        item = usual_item(past, rules.usually_buys_visits)
        if item is not None:
            line = f"usually buys {item}"
            return line if len(line) <= MAX_LINE else line[:MAX_LINE - 3] + "..."
    return ""
