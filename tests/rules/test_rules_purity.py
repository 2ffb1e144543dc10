"""The engine's modules stay pure: no I/O, clock, threads or randomness imported or read."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

RULES = Path(__file__).parents[2] / "pos_loyalty" / "rules"
PURE = ["engine.py", "model.py", "redeem.py", "refund.py", "expiry.py", "game.py",
        "settlement.py", "tiers.py", "parse.py", "program.py", "toml.py", "amounts.py",
        "replay.py", *sorted(f"kinds/{p.name}" for p in (RULES / "kinds").glob("*.py"))]
FORBIDDEN_MODULES = {"time", "random", "os", "socket", "threading", "secrets", "io",
                     "pathlib", "subprocess", "sqlalchemy", "serial", "nfc", "uuid"}
FORBIDDEN_CALLS = {"now", "today", "utcnow", "open", "urandom", "print"}


class TestPurity:
    """Pure modules import nothing that touches the world and never read the clock."""

    @pytest.mark.parametrize("name", PURE)
    def test_no_io_imports_or_clock(self, name: str) -> None:
        """The module's imports and calls avoid I/O, clock and random sources."""
        tree = ast.parse((RULES / name).read_text(), filename=name)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                mods = {(node.module or "").split(".")[0]}
            else:
                mods = set()
            assert not mods & FORBIDDEN_MODULES, f"{name} imports {mods & FORBIDDEN_MODULES}"
            if isinstance(node, ast.Call):
                fn = node.func
                called = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
                assert called not in FORBIDDEN_CALLS, f"{name} calls {called}()"
