"""Each rule kind is its own small frozen class, found by its TOML name."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from rules_helpers import program

from pos_loyalty.errors import ConfigError
from pos_loyalty.rules.kinds import KINDS, Rule

DOCS = (Path(__file__).parents[2] / "docs" / "rules.md").read_text()


class TestRegistry:
    """The kinds the docs list are the kinds the parser knows."""

    def test_docs_and_registry_agree(self) -> None:
        """Every kind in the mechanics table has a class, and every class is documented."""
        documented = dict(re.findall(r"\| `([a-z_]+)` \| `(\w+)`", DOCS))
        assert documented == {k: cls.__name__ for k, cls in KINDS.items()}
        assert {"earn", "discount", "stamps", "tiers", "instant_win", "perk"} <= set(KINDS)

    @pytest.mark.parametrize("kind", sorted(KINDS))
    def test_frozen_class_per_kind(self, kind: str) -> None:
        """A kind's class is frozen, named by KIND, and its own keys are not common keys."""
        cls = KINDS[kind]
        assert issubclass(cls, Rule) and kind == cls.KIND
        assert dataclasses.fields(cls) and cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
        assert not cls.KEYS & {"kind", "id", "label", "group", "tiers", "from", "until"}

    @pytest.mark.parametrize("kind", sorted(KINDS))
    def test_other_kinds_keys_refused(self, kind: str) -> None:
        """A key of another kind is refused on this one, at its line, with the kind named."""
        foreign = next(k for other in KINDS.values() for k in sorted(other.KEYS)
                       if k not in KINDS[kind].KEYS)
        with pytest.raises(ConfigError) as info:
            program(f'[[rule]]\nkind = "{kind}"\n{foreign} = 1\n')
        assert info.value.line in (2, 3)  # the kind's own validation may come first

    def test_misspelt_kind_hint(self) -> None:
        """An unknown kind lists the kinds and suggests the nearest."""
        with pytest.raises(ConfigError, match="did you mean 'stamps'"):
            program('[[rule]]\nkind = "stamp"\n')
