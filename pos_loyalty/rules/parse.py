"""Program TOML -> Program, with errors that name the file, the dotted key and its line.

tomllib reports line numbers only for syntax errors, so semantic errors find their line in
the source text: ``KeyLines`` maps every dotted key path (``rule[2].percent``) to the line
where it is written. Unknown keys are errors too: a typo must not silently disable a rule.
"""

from __future__ import annotations

import difflib
import itertools
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pos_loyalty.errors import ConfigError
from pos_loyalty.rules.program import (
    RULE_KINDS,
    WEEKDAYS,
    CatalogItem,
    Coalition,
    Conditions,
    Expiry,
    Level,
    Partner,
    Prize,
    Program,
    Redemption,
    Returns,
    Rule,
    Stacking,
    Tax,
)

PathPart = str | int
T = TypeVar("T")

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_BARE = r"""(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')"""
_KEY = re.compile(rf"^\s*({_BARE}(?:\s*\.\s*{_BARE})*)\s*=")


def _split_key(key: str) -> list[str]:
    parts = re.findall(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""", key)
    return [p[1:-1] if p[:1] in "\"'" else p for p in parts]


class KeyLines:
    """Where each key path of a TOML document is written (1-based lines)."""

    def __init__(self, text: str) -> None:
        self.lines: dict[tuple[PathPart, ...], int] = {}
        counters: dict[tuple[PathPart, ...], int] = {}
        table: tuple[PathPart, ...] = ()
        value: _InlineValue | None = None  # an array or inline table still open
        closing = ""  # delimiter of an open multi-line string
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if closing:
                if raw.count(closing) % 2 == 1:
                    closing = ""
                continue
            if value is not None:
                if value.feed(raw, number):
                    value = None
                continue
            header = _HEADER.match(raw)
            if header and line.startswith("["):
                parts = _split_key(header.group(2))
                resolved: list[PathPart] = []
                for part in parts[:-1]:
                    resolved.append(part)
                    idx = counters.get(tuple(resolved))
                    if idx is not None:
                        resolved.append(idx)
                resolved.append(parts[-1])
                if header.group(1) == "[[":
                    key = tuple(resolved)
                    self.lines.setdefault(key, number)  # the array starts here
                    counters[key] = counters.get(key, -1) + 1
                    resolved.append(counters[key])
                table = tuple(resolved)
                self.lines.setdefault(table, number)
                continue
            m = _KEY.match(raw)
            if m:
                key_path = table + tuple(_split_key(m.group(1)))
                self.lines.setdefault(key_path, number)
                rest = raw[m.end():]
                for delim in ('"""', "'''"):
                    if rest.count(delim) % 2 == 1:
                        closing = delim
                if not closing and rest.lstrip()[:1] in ("[", "{"):
                    scan = _InlineValue(key_path, self.lines)
                    if not scan.feed(rest, number):
                        value = scan

    def line_of(self, path: Iterable[PathPart]) -> int | None:
        """The line of the longest written prefix of ``path``."""
        parts = tuple(path)
        while parts:
            if parts in self.lines:
                return self.lines[parts]
            parts = parts[:-1]
        return None


_BASIC = re.compile(r'"(?:\\.|[^"\\])*"')
_LITERAL = re.compile(r"'[^']*'")
_INLINE_KEY = re.compile(rf"({_BARE}(?:\s*\.\s*{_BARE})*)\s*=")


class _InlineValue:
    """Lines of the keys and elements inside an array or inline table value, which may
    span lines (``scale = [\n {from = 0, ...},\n {from = 500, ...}]``)."""

    def __init__(self, base: tuple[PathPart, ...],
                 lines: dict[tuple[PathPart, ...], int]) -> None:
        self.base = base
        self.lines = lines
        self.stack: list[list[Any]] = []  # ["arr", index] or ["tbl", key parts]
        self.expect_key = False

    def _path(self) -> tuple[PathPart, ...]:
        out: list[PathPart] = list(self.base)
        for kind, at in self.stack:
            out.extend([at] if kind == "arr" else at)
        return tuple(out)

    def feed(self, text: str, number: int) -> bool:
        """Read one line's part of the value; True once the value is closed."""
        i, n = 0, len(text)
        while i < n:
            c = text[i]
            top = self.stack[-1] if self.stack else None
            if c in " \t":
                i += 1
            elif c == "#":
                break
            elif top is not None and top[0] == "tbl" and self.expect_key \
                    and (m := _INLINE_KEY.match(text, i)):
                top[1] = tuple(_split_key(m.group(1)))
                self.lines.setdefault(self._path(), number)
                self.expect_key = False
                i = m.end()
            elif c in "[{":
                if top is not None and top[0] == "arr":
                    self.lines.setdefault(self._path(), number)
                self.stack.append(["arr", 0] if c == "[" else ["tbl", ()])
                self.expect_key = c == "{"
                i += 1
            elif c in "]}":
                if self.stack:
                    self.stack.pop()
                if not self.stack:
                    return True
                i += 1
            elif c == ",":
                if top is not None and top[0] == "arr":
                    top[1] += 1
                else:
                    self.expect_key = True
                i += 1
            else:
                if top is not None and top[0] == "arr":
                    self.lines.setdefault(self._path(), number)
                m = (_BASIC if c == '"' else _LITERAL).match(text, i) if c in "\"'" else None
                i = m.end() if m else i + 1
        return False


def dotted(path: Iterable[PathPart]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


class Table:
    """A TOML table being read: typed getters that know their path, unknown keys refused."""

    def __init__(self, ctx: _Ctx, data: dict[str, Any], path: tuple[PathPart, ...]) -> None:
        self.ctx = ctx
        self.data = data
        self.path = path
        self.used: set[str] = set()

    def error(self, key: str | int | None, message: str) -> ConfigError:
        path = (*self.path, key) if key is not None else self.path
        return self.ctx.error(path, message)

    def has(self, key: str) -> bool:
        return key in self.data

    def _get(self, key: str) -> Any:
        self.used.add(key)
        return self.data.get(key)

    def integer(self, key: str, default: int, *, minimum: int = 0,
            maximum: int | None = None) -> int:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.error(key, f"must be an integer, got {value!r}")
        if value < minimum:
            raise self.error(key, f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise self.error(key, f"must be at most {maximum}, got {value}")
        return value

    def positive(self, key: str, default: int) -> int:
        return self.integer(key, default, minimum=1)

    def string(self, key: str, default: str) -> str:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self.error(key, f"must be a string, got {value!r}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, got {value!r}")
        return value

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> Any:
        value = self.string(key, default)
        if value not in choices:
            raise self.error(key, f"must be one of {', '.join(choices)}; got {value!r}")
        return value

    def percent_bp(self, key: str) -> int:
        """A percentage (10, 12.5) as basis points, exact to 0.01%."""
        value = self._get(key)
        if value is None:
            return 0
        return self.ctx.to_bp(value, (*self.path, key))

    def strings(self, key: str) -> tuple[str, ...]:
        value = self._get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(key, f"must be a list of strings, got {value!r}")
        return tuple(value)

    def day(self, key: str) -> date | None:
        value = self._get(key)
        if value is None:
            return None
        if isinstance(value, date):
            return value
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        raise self.error(key, f"must be a date (YYYY-MM-DD), got {value!r}")

    def table(self, key: str) -> Table | None:
        value = self._get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.error(key, f"must be a table, got {value!r}")
        return Table(self.ctx, value, (*self.path, key))

    def tables(self, key: str) -> list[Table]:
        value = self._get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.error(key, "must be an array of tables")
        return [Table(self.ctx, v, (*self.path, key, i)) for i, v in enumerate(value)]

    def int_map(self, key: str, convert: Callable[[Any, tuple[PathPart, ...]], int]
                ) -> tuple[tuple[str, int], ...]:
        sub = self.table(key)
        if sub is None:
            return ()
        sub.used.update(sub.data)
        return tuple((k, convert(v, (*sub.path, k))) for k, v in sub.data.items())

    def done(self) -> None:
        for key in self.data:
            if key not in self.used:
                raise self.error(key, "unknown key")


class _Ctx:
    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.keys = KeyLines(text)

    def error(self, path: Iterable[PathPart], message: str) -> ConfigError:
        parts = tuple(path)
        return ConfigError(message, path=self.path, key=dotted(parts) or None,
                           line=self.keys.line_of(parts))

    def to_bp(self, value: Any, path: tuple[PathPart, ...]) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(path, f"must be a percentage number, got {value!r}")
        try:
            bp = Decimal(str(value)) * 100
        except InvalidOperation as exc:  # pragma: no cover - str(float) is always valid
            raise self.error(path, f"not a number: {value!r}") from exc
        if bp != bp.to_integral_value() or bp < 0:
            raise self.error(path, f"must be a non-negative percentage with at most 2 decimals,"
                                   f" got {value!r}")
        return int(bp)

    def to_int(self, value: Any, path: tuple[PathPart, ...]) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.error(path, f"must be a non-negative integer, got {value!r}")
        return value


def parse_text(text: str, *, path: str = "<program>") -> Program:
    """Parse and validate a program file's text."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise ConfigError(f"TOML syntax: {message}", path=path,
                          line=int(m.group(1)) if m else None) from exc
    ctx = _Ctx(path, text)
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
    if sum(1 for r in rules if r.kind == "tiers") > 1:
        raise ctx.error(("rule",), "only one rule may have kind = 'tiers'")
    _check_tier_names(ctx, rules, declared_tiers)
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
        hint = _hint(name, _zone_names())
        raise t.error("timezone", f"unknown IANA time zone {name!r}{hint}") from None
    return name


def _zone_names() -> list[str]:
    import zoneinfo

    return sorted(zoneinfo.available_timezones())


def _hint(word: str, known: Iterable[str]) -> str:
    """' (did you mean 'Gold'?)' for a near miss, else ''."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_tier_names(ctx: _Ctx, rules: list[Rule], declared: tuple[str, ...]) -> None:
    """Every tier a rule names must be a level of the program: a typo would disable it."""
    tiers_rule = next((r for r in rules if r.kind == "tiers"), None)
    levels = [lv.name for lv in tiers_rule.levels] if tiers_rule else list(declared)
    if tiers_rule is not None and declared and set(declared) != set(levels):
        raise ctx.error(("program", "tiers"), "must list the same names as the tiers rule's "
                                              f"levels ({', '.join(levels)}) or be left out")
    for i, rule in enumerate(rules):
        named: list[tuple[tuple[PathPart, ...], str]] = [
            (("rule", i, "tiers"), t) for t in sorted(rule.when.tiers)]
        named += [(("rule", i, "by_tier", t), t) for t, _ in rule.by_tier]
        for path, tier in named:
            if tier in levels:
                continue
            if not levels:
                raise ctx.error(path, f"names tier {tier!r} but the program defines no tiers:"
                                      " add a 'tiers' rule or [program] tiers = [...]")
            raise ctx.error(path, f"unknown tier {tier!r}{_hint(tier, levels)}; the "
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


def _need(t: Table, ok: bool, key: str, message: str) -> None:
    if not ok:
        raise t.error(key, message)


_COMMON_KEYS = frozenset({
    "kind", "id", "label", "group", "tiers", "segments", "merchants", "categories", "skus",
    "exclude_categories", "exclude_skus", "from", "until", "weekdays", "birthday", "min_spend",
    "membership", "limit",
})
_KIND_KEYS: dict[str, frozenset[str]] = {
    "earn": frozenset({"points", "per", "per_item", "per_visit", "multipliers", "free_items"}),
    "multiplier": frozenset({"percent"}),
    "bonus": frozenset({"points"}),
    "discount": frozenset({"percent", "amount", "by_tier"}),
    "coupon": frozenset({"percent", "amount", "by_tier", "code", "bound", "uses"}),
    "progressive": frozenset({"scale", "basis"}),
    "threshold": frozenset({"every", "points", "coupon", "perk", "basis", "value"}),
    "stamps": frozenset({"card", "every", "per", "free", "free_items"}),
    "tiers": frozenset({"levels", "period_months", "downgrade"}),
    "credit": frozenset({"max_per_sale"}),
    "membership": frozenset({"plan", "fee_sku", "valid_days", "percent", "earn_percent",
                             "perks"}),
    "instant_win": frozenset({"prizes"}),
    "referral": frozenset({"referee_points", "referrer_points"}),
    "perk": frozenset({"text"}),
}


def _parse_rule(t: Table, index: int) -> Rule:
    kind = t.string("kind", "")
    if kind not in RULE_KINDS:
        raise t.error("kind", f"must be one of {', '.join(RULE_KINDS)}; got {kind!r}")
    allowed = _COMMON_KEYS | _KIND_KEYS[kind]
    for key in t.data:
        if key not in allowed:
            raise t.error(key, f"unknown key for a rule of kind '{kind}'")
    rid = t.string("id", f"{kind}-{index}")
    label = t.string("label", "")
    rule = Rule(id=rid, kind=kind,  # type: ignore[arg-type]
                label=label or rid, group=t.string("group", rid), when=_conditions(t))
    ctx = t.ctx
    if kind == "earn":
        rule = replace(rule, points=t.integer("points", 0), per=t.integer("per", 100, minimum=1),
                       per_item=t.integer("per_item", 0), per_visit=t.integer("per_visit", 0),
                       multipliers=t.int_map("multipliers", ctx.to_int),
                       free_items=t.flag("free_items", False))
        _need(t, bool(rule.points or rule.per_item or rule.per_visit), "points",
              "an earn rule needs points (with per), per_item or per_visit")
    elif kind == "multiplier":
        rule = replace(rule, percent=t.positive("percent", 100))
    elif kind == "bonus":
        rule = replace(rule, points=t.positive("points", 1))
    elif kind in ("discount", "coupon"):
        rule = replace(rule, discount_bp=t.percent_bp("percent"), amount=t.integer("amount", 0),
                       by_tier=t.int_map("by_tier", ctx.to_bp))
        if kind == "coupon":
            rule = replace(rule, code=t.string("code", ""),
                           bound=t.choice("bound", "member", ("member", "segment", "anyone")),
                           uses=t.positive("uses", 1))
            _need(t, bool(rule.code), "code", "a coupon needs a code")
            _need(t, rule.bound != "segment" or bool(rule.when.segments), "segments",
                  "a segment coupon needs segments")
        _need(t, bool(rule.discount_bp or rule.amount or rule.by_tier), "percent",
              "needs percent, amount or by_tier")
        for key, bp in [("percent", rule.discount_bp), *[(f"by_tier.{k}", v)
                                                          for k, v in rule.by_tier]]:
            _need(t, bp <= 10000, key, "a discount cannot exceed 100%")
    elif kind == "progressive":
        scale: list[tuple[int, int]] = []
        for s in t.tables("scale"):
            scale.append((s.integer("from", 0), s.percent_bp("percent")))
            s.done()
        _need(t, bool(scale), "scale", "needs at least one step")
        for i, (a, b) in enumerate(itertools.pairwise(scale)):
            if a[0] >= b[0]:
                raise t.ctx.error((*t.path, "scale", i + 1, "from"),
                                  f"steps must be in ascending order of 'from': {b[0]} "
                                  f"follows {a[0]}")
        rule = replace(rule, scale=tuple(scale),
                       basis=t.choice("basis", "lifetime", ("lifetime", "period")))
    elif kind == "threshold":
        rule = replace(rule, every=t.positive("every", 1), points=t.integer("points", 0),
                       coupon=t.string("coupon", ""), perk=t.string("perk", ""),
                       value=t.integer("value", 0),
                       basis=t.choice("basis", "lifetime", ("lifetime", "period")))
        _need(t, bool(rule.points or rule.coupon or rule.perk), "coupon",
              "needs a reward: points, coupon or perk")
    elif kind == "stamps":
        rule = replace(rule, card=t.string("card", rid), every=t.integer("every", 10, minimum=2),
                       stamp_per=t.choice("per", "item", ("item", "visit")),
                       free=t.choice("free", "cheapest", ("cheapest", "dearest")),
                       free_items=t.flag("free_items", False))
    elif kind == "tiers":
        levels = []
        for lv in t.tables("levels"):
            levels.append(Level(name=lv.string("name", ""), min_spend=lv.integer("min_spend", 0),
                                min_visits=lv.integer("min_visits", 0),
                                earn_percent=lv.positive("earn_percent", 100),
                                perks=lv.strings("perks")))
            if not levels[-1].name:
                raise lv.error("name", "is required")
            lv.done()
        _need(t, bool(levels), "levels", "needs at least one level")
        _need(t, all((a.min_spend, a.min_visits) <= (b.min_spend, b.min_visits)
                     for a, b in itertools.pairwise(levels)), "levels",
              "levels must go from lowest to highest")
        rule = replace(rule, levels=tuple(levels),
                       period_months=t.integer("period_months", 12),
                       downgrade=t.choice("downgrade", "one_level",
                                          ("one_level", "requalify", "never")))
    elif kind == "credit":
        rule = replace(rule, max_per_sale=t.positive("max_per_sale", 1))
    elif kind == "membership":
        rule = replace(rule, plan=t.string("plan", rid), fee_sku=t.string("fee_sku", ""),
                       valid_days=t.positive("valid_days", 365),
                       discount_bp=t.percent_bp("percent"),
                       percent=t.integer("earn_percent", 100, minimum=100),
                       perks=t.strings("perks"))
    elif kind == "instant_win":
        prizes = []
        for p in t.tables("prizes"):
            prizes.append(Prize(name=p.string("name", ""), one_in=p.positive("one_in", 1),
                                value=p.integer("value", 0), budget=p.integer("budget", 0)))
            if not prizes[-1].name:
                raise p.error("name", "is required")
            p.done()
        _need(t, bool(prizes), "prizes", "needs at least one prize")
        _need(t, sum(1_000_000 // p.one_in for p in prizes) <= 1_000_000, "prizes",
              "the odds of all prizes add up to more than 1")
        rule = replace(rule, prizes=tuple(prizes))
    elif kind == "referral":
        rule = replace(rule, referee_points=t.integer("referee_points", 0),
                       referrer_points=t.integer("referrer_points", 0))
        _need(t, bool(rule.referee_points or rule.referrer_points), "referee_points",
              "needs referee_points or referrer_points")
    elif kind == "perk":
        rule = replace(rule, perk=t.string("text", ""))
        _need(t, bool(rule.perk), "text", "a perk needs its text")
    t.done()
    return rule
