"""The one edge of the rules package: reading a program file from disk."""

from __future__ import annotations

from pathlib import Path

from pos_loyalty.errors import ConfigError
from pos_loyalty.rules.parse import parse_program
from pos_loyalty.rules.program import Program


def load_program(path: str | Path) -> Program:
    """Read and parse a program file; an unreadable file is a ConfigError too."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read program file: {exc.strerror}", path=str(p)) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"program file is not UTF-8 text: {exc.reason}", path=str(p)) from exc
    return parse_program(text, path=str(p))
