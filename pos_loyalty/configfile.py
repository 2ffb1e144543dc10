"""Reading TOML files whose errors must name the file, the key and the line.

``tomllib`` reports lines only for syntax errors; for a value of the wrong type or range we
find the key's line in the source text ourselves, so store IT is pointed at the exact line.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from pos_loyalty.errors import ConfigError

_TABLE = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


_AT_LINE = re.compile(r"^(.*) \(at line (\d+), column \d+\)$")


def loads_toml(text: str, *, path: str) -> dict[str, Any]:
    """``tomllib.loads``, with a syntax error as a ConfigError naming the file and line (the
    one reading of TOML text for config, program and offers files)."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line, msg = _syntax_position(exc)
        raise ConfigError(f"TOML syntax: {msg}", path=path, line=line) from exc


def _syntax_position(exc: tomllib.TOMLDecodeError) -> tuple[int | None, str]:
    """Line and message of a TOML syntax error (3.11 puts the line only in the text)."""
    lineno = getattr(exc, "lineno", None)
    if isinstance(lineno, int):
        return lineno, str(getattr(exc, "msg", exc))
    match = _AT_LINE.match(str(exc))
    if match:
        return int(match.group(2)), match.group(1)
    return None, str(exc)


def _strip_key(raw: str) -> str:
    return raw.strip().strip('"').strip("'")


def key_line(text: str, dotted: str) -> int | None:
    """The 1-based line where ``dotted`` (e.g. ``serial.baudrate``) is set, if we can find it."""
    parts = dotted.split(".")
    table: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        header = _TABLE.match(line)
        if header:
            table = [_strip_key(p) for p in header.group(1).split(".")]
            if table == parts:
                return number
            continue
        if "=" not in line or line.lstrip().startswith("#"):
            continue
        key = [_strip_key(p) for p in line.split("=", 1)[0].split(".")]
        if table + key == parts:
            return number
    return None


class TomlDocument:
    """A parsed TOML file that can raise errors pointing at a key's line."""

    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.path = path
        self.data: dict[str, Any] = loads_toml(text, path=path)

    @classmethod
    def load(cls, path: str | Path) -> TomlDocument:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read file: {exc.strerror}", path=str(p)) from exc
        except UnicodeDecodeError as exc:
            raise ConfigError("file is not UTF-8 text", path=str(p)) from exc
        return cls(text, str(p))

    def error(self, dotted: str, message: str) -> ConfigError:
        return ConfigError(message, path=self.path, key=dotted, line=key_line(self.text, dotted))

    def table(self, dotted: str) -> dict[str, Any]:
        """A sub-table (empty if absent); an error if the key holds something else."""
        node: Any = self.data
        for part in dotted.split("."):
            node = node.get(part, {}) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            raise self.error(dotted, "must be a table")
        return node

    def check_keys(self, dotted: str, allowed: set[str]) -> None:
        """Refuse unknown keys: a typo must not be silently ignored."""
        prefix = f"{dotted}." if dotted else ""
        source = self.table(dotted) if dotted else self.data
        for key in source:
            if key not in allowed:
                raise self.error(f"{prefix}{key}", f"unknown key (expected one of: "
                                 f"{', '.join(sorted(allowed))})")

    def get(self, dotted: str, kind: type | tuple[type, ...], default: Any) -> Any:
        """The value at ``dotted`` if present and of ``kind``, else ``default``."""
        *parents, last = dotted.split(".")
        node = self.table(".".join(parents)) if parents else self.data
        if last not in node:
            return default
        value = node[last]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            value_ok = False
        else:
            value_ok = isinstance(value, kinds)
        if not value_ok:
            names = " or ".join(k.__name__ for k in kinds)
            raise self.error(dotted, f"must be {names}, got {value!r}")
        return value
