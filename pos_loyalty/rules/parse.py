"""Program TOML -> Program, with errors that name the file, the dotted key and its line.

The program-wide tables are read here; each ``[[rule]]`` is read by its kind's class
(``pos_loyalty.rules.kinds``) through the typed, position-aware tables of
``pos_loyalty.rules.toml``.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pos_loyalty.configfile import loads_toml
from pos_loyalty.rules.kinds import KINDS, WEEKDAYS, Conditions, Membership, Rule, Tiers
from pos_loyalty.rules.program import (
    CatalogItem,
    Coalition,
    Expiry,
    Partner,
    Program,
    Redemption,
    Returns,
    Stacking,
    Tax,
)
from pos_loyalty.rules.toml import Ctx, PathPart, Table, hint


def parse_text(text: str, *, path: str = "<program>") -> Program:
    """Parse and validate a program file's text."""
    data = loads_toml(text, path=path)
    ctx = Ctx(path, text)
    root = Table(ctx, data, ())
    head = root.table("program")
    name = "Loyalty program"
    currency = timezone = ""
    declared_tiers: tuple[str, ...] = ()
    if head is not None:
        name = head.string("name", name)
        currency = _currency(head)
        timezone = _timezone(head)
        declared_tiers = head.strings("tiers")
        head.done()
    tax = _parse_tax(root.table("tax"))
    stacking = _parse_stacking(root.table("stacking"))
    redemption = _parse_redemption(root.table("redemption"))
    expiry = _parse_expiry(root.table("expiry"))
    returns_t = root.table("returns")
    returns = Returns()
    if returns_t is not None:
        returns = Returns(spent_points=returns_t.choice(
            "spent_points", "deduct_from_refund", ("deduct_from_refund", "negative_balance")))
        returns_t.done()
    coalition = _parse_coalition(root.table("coalition"))
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for i, t in enumerate(root.tables("rule")):
        rule = _parse_rule(t, i)
        if rule.id in seen:
            raise t.error("id", f"duplicate rule id {rule.id!r} "
                                f"(first used by rule[{seen[rule.id]}])")
        seen[rule.id] = i
        rules.append(rule)
    root.done()
    if sum(1 for r in rules if isinstance(r, Tiers)) > 1:
        raise ctx.error(("rule",), "only one rule may have kind = 'tiers'")
    _check_references(ctx, rules, declared_tiers)
    groups = {r.group for r in rules}
    for i, g in enumerate(stacking.order):
        if g not in groups:
            raise ctx.error(("stacking", "order", i), f"unknown group {g!r}")
    for g, _mode in stacking.modes:
        if g not in groups:
            raise ctx.error(("stacking", "groups", g), f"unknown group {g!r}")
    for i, ex in enumerate(stacking.exclusive):
        for g in ex:
            if g not in groups:
                raise ctx.error(("stacking", "exclusive", i), f"unknown group {g!r}")
    rules = [replace(r, program=name) for r in rules]
    return Program(name=name, rules=tuple(rules), tax=tax, stacking=stacking,
                   redemption=redemption, expiry=expiry, returns=returns,
                   coalition=coalition, source=path, timezone=timezone, currency=currency,
                   tier_names=declared_tiers)


# ISO 4217 currencies whose minor unit is not 1/100; every other code has 2 digits.
_MINOR_DIGITS = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF",
                     "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}


def _currency(head: Table) -> str:
    """The program's currency: a 2-digit ISO 4217 code, or refused (never ignored)."""
    code = head.string("currency", "")
    if not code:
        return ""
    if not re.fullmatch(r"[A-Z]{3}", code):
        raise head.error("currency", f"must be an ISO 4217 code like 'EUR', got {code!r}")
    digits = _MINOR_DIGITS.get(code, 2)
    if digits != 2:
        raise head.error("currency", f"{code} has {digits} minor-unit digits; prices, "
                                     "amounts and the till display assume 2 (cents)")
    return code


def _timezone(t: Table) -> str:
    """An IANA zone name that this machine's zone database knows."""
    name = t.string("timezone", "")
    if not name:
        return ""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise t.error("timezone", f"unknown IANA time zone {name!r}"
                                  f"{hint(name, _zone_names())}") from None
    return name


def _zone_names() -> list[str]:
    import zoneinfo

    return sorted(zoneinfo.available_timezones())


def _check_references(ctx: Ctx, rules: list[Rule], declared: tuple[str, ...]) -> None:
    """Every tier, plan and coupon a rule names must exist in the program: a typo there
    would silently disable the rule."""
    tiers_rule = next((r for r in rules if isinstance(r, Tiers)), None)
    levels = list(tiers_rule.names) if tiers_rule else list(declared)
    if tiers_rule is not None and declared and set(declared) != set(levels):
        raise ctx.error(("program", "tiers"), "must list the same names as the tiers rule's "
                                              f"levels ({', '.join(levels)}) or be left out")
    for i, rule in enumerate(rules):
        broken = rule.refers(rules)
        if broken is not None:
            raise ctx.error(("rule", i, *broken[0]), broken[1])
        plans = [r.plan for r in rules if isinstance(r, Membership)]
        if rule.when.membership and plans and rule.when.membership not in plans:
            raise ctx.error(("rule", i, "membership"),
                            f"no membership rule has plan {rule.when.membership!r}"
                            f"{hint(rule.when.membership, plans)}")
        for where, tier in rule.tiers_named():
            path: tuple[PathPart, ...] = ("rule", i, *where)
            if tier in levels:
                continue
            if not levels:
                raise ctx.error(path, f"names tier {tier!r} but the program defines no tiers:"
                                      " add a 'tiers' rule or [program] tiers = [...]")
            raise ctx.error(path, f"unknown tier {tier!r}{hint(tier, levels)}; the "
                                  f"program's tiers are {', '.join(levels)}")


def _parse_tax(t: Table | None) -> Tax:
    if t is None:
        return Tax()
    tax = Tax(
        rate_bp=t.percent_bp("rate"),
        prices_include_tax=t.flag("prices_include_tax", True),
        discounts=t.choice("discounts", "before_tax", ("before_tax", "after_tax")),
        earn_on=t.choice("earn_on", "gross", ("gross", "net")),
    )
    t.done()
    return tax


def _parse_stacking(t: Table | None) -> Stacking:
    if t is None:
        return Stacking()
    order = t.strings("order")
    modes: list[tuple[str, Any]] = []
    g = t.table("groups")
    if g is not None:
        for key in g.data:
            modes.append((key, g.choice(key, "combine", ("combine", "best_of"))))
        g.done()
    exclusive: list[tuple[str, ...]] = []
    raw = t._get("exclusive")
    if raw is not None:
        if not isinstance(raw, list) or not all(
                isinstance(x, list) and all(isinstance(s, str) for s in x) for x in raw):
            raise t.error("exclusive", "must be a list of lists of group names")
        exclusive = [tuple(x) for x in raw]
    cap = t.percent_bp("max_discount") if t.has("max_discount") else 10000
    if cap > 10000:
        raise t.error("max_discount", "must be at most 100")
    st = Stacking(order=order, modes=tuple(modes), exclusive=tuple(exclusive),
                  compound=t.flag("compound", True), max_discount_bp=cap)
    t.done()
    return st


def _parse_redemption(t: Table | None) -> Redemption | None:
    if t is None:
        return None
    catalog = []
    for c in t.tables("catalog"):
        catalog.append(CatalogItem(code=c.string("code", ""), points=c.positive("points", 1),
                                   text=c.string("text", "")))
        if not catalog[-1].code:
            raise c.error("code", "is required")
        c.done()
    r = Redemption(
        points=t.positive("points", 100), value=t.positive("value", 100),
        min_points=t.integer("min_points", 0), max_points=t.integer("max_points", 0),
        max_percent=t.integer("max_percent", 100, maximum=100), step=t.positive("step", 1),
        partial=t.flag("partial", True), earn_on_redeemed=t.flag("earn_on_redeemed", False),
        catalog=tuple(catalog),
    )
    t.done()
    return r


def _parse_expiry(t: Table | None) -> Expiry:
    if t is None:
        return Expiry()
    mode = t.choice("mode", "rolling", ("none", "rolling", "fixed"))
    on = (12, 31)
    if t.has("on"):
        text = t.string("on", "12-31")
        m = re.fullmatch(r"(\d\d)-(\d\d)", text)
        try:
            if not m:
                raise ValueError(text)
            date(2000, int(m.group(1)), int(m.group(2)))
        except ValueError:
            raise t.error("on", f"must be a month-day like '12-31', got {text!r}") from None
        assert m is not None
        on = (int(m.group(1)), int(m.group(2)))
    e = Expiry(mode=mode, months=t.positive("months", 12), on=on,
               warn_days=t.integer("warn_days", 30))
    t.done()
    return e


def _parse_coalition(t: Table | None) -> Coalition | None:
    if t is None:
        return None
    partners = []
    for p in t.tables("partners"):
        mid = p.string("merchant_id", "")
        if not mid:
            raise p.error("merchant_id", "is required")
        partners.append(Partner(merchant_id=mid, name=p.string("name", mid)))
        p.done()
    c = Coalition(name=t.string("name", ""), partners=tuple(partners), fee_bp=t.percent_bp("fee"))
    t.done()
    return c


def _conditions(t: Table) -> Conditions:
    weekdays = []
    for i, d in enumerate(t.strings("weekdays")):
        if d.lower()[:3] not in WEEKDAYS:
            raise t.ctx.error((*t.path, "weekdays", i), f"not a weekday: {d!r}")
        weekdays.append(WEEKDAYS.index(d.lower()[:3]))
    cond = Conditions(
        tiers=frozenset(t.strings("tiers")),
        segments=frozenset(t.strings("segments")),
        merchants=frozenset(t.strings("merchants")),
        categories=frozenset(t.strings("categories")),
        skus=frozenset(t.strings("skus")),
        exclude_categories=frozenset(t.strings("exclude_categories")),
        exclude_skus=frozenset(t.strings("exclude_skus")),
        valid_from=t.day("from"),
        valid_until=t.day("until"),
        weekdays=frozenset(weekdays),
        birthday=t.choice("birthday", "", ("", "day", "week", "month")),
        min_spend=t.integer("min_spend", 0),
        membership=t.string("membership", ""),
        limit=t.choice("limit", "", ("", "day", "year", "once")),
    )
    if cond.valid_from and cond.valid_until and cond.valid_until < cond.valid_from:
        raise t.error("until", "is before 'from'")
    return cond


_COMMON_KEYS = frozenset({
    "kind", "id", "label", "group", "tiers", "segments", "merchants", "categories", "skus",
    "exclude_categories", "exclude_skus", "from", "until", "weekdays", "birthday", "min_spend",
    "membership", "limit",
})


def _parse_rule(t: Table, index: int) -> Rule:
    kind = t.string("kind", "")
    cls = KINDS.get(kind)
    if cls is None:
        raise t.error("kind", f"must be one of {', '.join(KINDS)}; got {kind!r}"
                              f"{hint(kind, KINDS)}")
    allowed = _COMMON_KEYS | cls.KEYS
    for key in t.data:
        if key not in allowed:
            raise t.error(key, f"unknown key for a rule of kind '{kind}'"
                               f"{hint(key, allowed)}")
    rid = t.string("id", f"{kind}-{index}")
    label = t.string("label", "")
    rule = cls.parse(t, id=rid, label=label or rid, group=t.string("group", rid),
                     when=_conditions(t))
    t.done()
    return rule


def parse_program(text: str, *, path: str = "<program>") -> Program:
    """Parse program TOML text; errors name the file, key and line."""
    return parse_text(text, path=path)
