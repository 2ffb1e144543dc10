"""TOML tables read with positions: typed getters whose errors name the file, the dotted
key and its line.

tomllib reports line numbers only for syntax errors, and no Python TOML parser exposes the
positions of keys (tomllib, tomli, tomlkit and rtoml do not), so ``KeyLines`` maps every
dotted key path (``rule[2].percent``, also inside arrays of tables and inline tables spread
over several lines) to the line where it is written. Unknown keys are errors: a typo must not
silently disable a rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from pos_loyalty.errors import ConfigError

PathPart = str | int

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

    def __init__(self, ctx: Ctx, data: dict[str, Any], path: tuple[PathPart, ...]) -> None:
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

    def need(self, ok: bool, key: str, message: str) -> None:
        """A ConfigError at ``key`` unless ``ok``."""
        if not ok:
            raise self.error(key, message)


def hint(word: str, known: Iterable[str]) -> str:
    """' (did you mean 'Gold'?)' for a near miss, else ''."""
    import difflib

    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class Ctx:
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


