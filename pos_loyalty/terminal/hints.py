"""The cashier's line on ``member.identified``: one short, friendly line per tap.

Central chooses a line from the member's history (docs/offers.md: "welcome back: last visit
in March", "usually buys oat milk") and whether the owner's birthday rule is on; terminals
pull it (entity ``cashier_lines``). The birthday line is made here, from the month and day
the terminal already holds, because it depends on the day of the tap; it wins over
central's line. Nothing else about the member is shown: no year of birth, no contact data.
"""

from __future__ import annotations

from datetime import date, timedelta

from pos_loyalty.store.lookup import LineFacts

BIRTHDAY_AHEAD_DAYS = 6
"""A birthday within this many days after the tap is mentioned (a week, today included)."""
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def next_birthday(born: date, today: date) -> date:
    """The member's next birthday on or after ``today`` (29 February: the 28th in other
    years)."""
    for year in (today.year, today.year + 1):
        try:
            day = born.replace(year=year)
        except ValueError:  # 29 February in a common year
            day = date(year, 2, 28)
        if day >= today:
            return day
    raise AssertionError("unreachable: a birthday falls within a year")


def birthday_line(born: date, today: date) -> str | None:
    """"birthday today", "birthday tomorrow", "birthday on Friday", or None (further off)."""
    days = (next_birthday(born, today) - today).days
    if days == 0:
        return "birthday today"
    if days == 1:
        return "birthday tomorrow"
    if days <= BIRTHDAY_AHEAD_DAYS:
        return f"birthday on {WEEKDAYS[(today + timedelta(days=days)).weekday()]}"
    return None


def cashier_line(facts: LineFacts | None, today: date) -> str | None:
    """The line for a member's tap on the shop's day ``today``, or None."""
    if facts is None:
        return None
    if facts.birthday_rule and facts.birthday is not None:
        line = birthday_line(facts.birthday, today)
        if line is not None:
            return line
    return facts.line or None
