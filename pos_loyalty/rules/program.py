"""A store's loyalty program, as declared in a TOML file."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pos_loyalty.errors import ConfigError


@dataclass(frozen=True)
class Program:
    """The mechanics a store runs. First cut: points per currency unit spent."""

    name: str = "Default points"
    points_per_unit: int = 1
    unit_minor: int = 100  # one currency unit in minor units (100 cents)


DEFAULT_PROGRAM = Program()


def parse_program(text: str, *, path: str = "<program>") -> Program:
    """Parse program TOML text; errors name the file, key and line."""
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(exc), path=path) from exc
    points = data.get("points", {})
    name = data.get("name", DEFAULT_PROGRAM.name)
    ppu = points.get("per_unit", DEFAULT_PROGRAM.points_per_unit)
    unit = points.get("unit_minor", DEFAULT_PROGRAM.unit_minor)
    for key, value in (("points.per_unit", ppu), ("points.unit_minor", unit)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"must be a positive integer, got {value!r}", path=path, key=key)
    return Program(name=str(name), points_per_unit=ppu, unit_minor=unit)


def load_program(path: str | Path) -> Program:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read program file: {exc.strerror}", path=str(p)) from exc
    return parse_program(text, path=str(p))
