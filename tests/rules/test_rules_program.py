"""Program files: every example loads, and errors name the file, the key and the line."""

from __future__ import annotations

from pathlib import Path

import pytest
from rules_helpers import program

from pos_loyalty.errors import ConfigError
from pos_loyalty.rules import (
    DEFAULT_PROGRAM,
    Program,
    combine_programs,
    load_program,
    parse_program,
)
from pos_loyalty.rules.kinds.discount import Discount
from pos_loyalty.rules.kinds.earn import Earn

EXAMPLES = Path(__file__).parents[2] / "examples" / "programs"


class TestExamples:
    """The shipped examples are valid programs."""

    @pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.name)
    def test_example_loads(self, path: Path) -> None:
        """Each example file parses and declares at least one rule or a redemption rate."""
        p = load_program(path)
        assert p.active_rules
        assert p.source == str(path)

    def test_one_file_per_mechanic(self) -> None:
        """There is an example for each of the 15 mechanics plus the two combined programs."""
        names = {p.name[:2] for p in EXAMPLES.glob("*.toml")}
        assert {f"{i:02d}" for i in range(1, 16)} <= names
        assert (EXAMPLES / "cafe.toml").exists() and (EXAMPLES / "clothing-chain.toml").exists()


class TestDefaults:
    """The first version's constructor keeps working."""

    def test_default_program_and_old_constructor(self) -> None:
        """Program(points_per_unit=2) is still a 2-points-per-1.00 program."""
        for prog, points in ((DEFAULT_PROGRAM, 1), (Program(points_per_unit=2), 2)):
            rule = prog.active_rules[0]
            assert isinstance(rule, Earn) and rule.points == points


def error_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_program(text, path="shop.toml")
    return info.value


class TestErrors:
    """Every mistake is reported with file, dotted key and line."""

    def test_syntax_error_has_line(self) -> None:
        """A TOML syntax error keeps tomllib's line number."""
        err = error_of('[program]\nname = "x"\n\n[[rule]\nkind = "earn"\n')
        assert err.path == "shop.toml" and err.line == 4
        assert str(err).startswith("shop.toml:4: TOML syntax")

    def test_wrong_type_names_key_and_line(self) -> None:
        """A string where a number belongs names rule[1].percent and its line."""
        err = error_of(
            '[[rule]]\nid = "a"\nkind = "earn"\npoints = 1\n\n'
            '[[rule]]\nid = "b"\nkind = "discount"\n# ten percent\npercent = "ten"\n')
        assert (err.key, err.line) == ("rule[1].percent", 10)
        assert str(err) == ("shop.toml:10: key 'rule[1].percent': must be a percentage number,"
                            " got 'ten'")

    def test_unknown_key_is_refused(self) -> None:
        """A typo in a key does not silently disable a rule."""
        err = error_of('[[rule]]\nkind = "discount"\nprecent = 10\n')
        assert (err.key, err.line) == ("rule[0].precent", 3)
        assert "unknown key" in str(err)

    def test_unknown_kind(self) -> None:
        """An unknown kind lists the valid ones."""
        err = error_of('[[rule]]\nkind = "cashback"\n')
        assert err.key == "rule[0].kind" and "stamps" in str(err)

    def test_nested_table_line(self) -> None:
        """A bad level inside an array of tables is found on its own line."""
        err = error_of('[[rule]]\nkind = "tiers"\n[[rule.levels]]\nname = "Red"\n'
                       '[[rule.levels]]\nname = "Gold"\nearn_percent = -5\n')
        assert (err.key, err.line) == ("rule[0].levels[1].earn_percent", 7)

    def test_array_of_tables_itself(self) -> None:
        """An error about a whole array of tables points at its first header."""
        err = error_of('[[rule]]\nkind = "tiers"\n\n[[rule.levels]]\nname = "Gold"\n'
                       'min_spend = 100\n[[rule.levels]]\nname = "Red"\n')
        assert (err.key, err.line) == ("rule[0].levels", 4)

    def test_inline_table_value(self) -> None:
        """A bad value in an inline table points at the line of its key."""
        err = error_of('[[rule]]\nkind = "discount"\nby_tier = { Gold = "x" }\n')
        assert (err.key, err.line) == ("rule[0].by_tier.Gold", 3)

    def test_stacking_unknown_group(self) -> None:
        """A stacking order naming a group no rule uses is an error on that line."""
        err = error_of('[[rule]]\nid = "d"\nkind = "discount"\npercent = 5\n\n'
                       '[stacking]\norder = ["nope"]\n')
        assert (err.key, err.line) == ("stacking.order[0]", 7)

    def test_duplicate_rule_id(self) -> None:
        """Two rules cannot share an id."""
        err = error_of('[[rule]]\nid = "a"\nkind = "bonus"\npoints = 1\n'
                       '[[rule]]\nid = "a"\nkind = "bonus"\npoints = 2\n')
        assert (err.key, err.line) == ("rule[1].id", 6)

    def test_discount_over_hundred_percent(self) -> None:
        """A discount above 100% is refused."""
        err = error_of('[[rule]]\nkind = "discount"\npercent = 120\n')
        assert err.key == "rule[0].percent" and "100%" in str(err)

    def test_percent_precision(self) -> None:
        """Percentages carry at most two decimals (basis points)."""
        err = error_of('[[rule]]\nkind = "discount"\npercent = 10.125\n')
        assert err.key == "rule[0].percent"
        rule = program('[[rule]]\nkind = "discount"\npercent = 12.5\n').active_rules[0]
        assert isinstance(rule, Discount) and rule.percent_bp == 1250

    def test_odds_add_up(self) -> None:
        """Prizes whose odds sum above 1 are refused."""
        err = error_of('[[rule]]\nkind = "instant_win"\n[[rule.prizes]]\nname = "a"\n'
                       'one_in = 1\n[[rule.prizes]]\nname = "b"\none_in = 2\n')
        assert err.key == "rule[0].prizes"

    def test_unreadable_file(self, tmp_path: Path) -> None:
        """A missing file is a ConfigError naming it."""
        with pytest.raises(ConfigError) as info:
            load_program(tmp_path / "missing.toml")
        assert "missing.toml" in str(info.value)


class TestCombine:
    """Several programs active at once behave as one, each line naming its program."""

    def test_campaign_on_top_of_base(self) -> None:
        """A base points program plus a campaign file: both apply, lines name their program."""
        base = load_program(EXAMPLES / "01-points.toml")
        campaign = load_program(EXAMPLES / "02-member-discount.toml")
        both = combine_programs([base, campaign])
        from rules_helpers import NOON, basket

        from pos_loyalty.rules import MemberView, quote

        q = quote(MemberView("m"), basket(("shirt", 1, 10000, "wear")), NOON, both)
        assert {(ln.program, ln.kind) for ln in q.lines} == {
            ("Points", "points"), ("Member discount", "discount")}
        assert q.points_total == 90 + 5
        assert both.rate.points == 100

    def test_clashing_ids_refused(self) -> None:
        """Two programs using the same rule id cannot be combined."""
        p = load_program(EXAMPLES / "01-points.toml")
        with pytest.raises(ConfigError, match="'base' is used by both"):
            combine_programs([p, p])


class TestKeyLines:
    """Line lookup is not fooled by multi-line strings and arrays."""

    def test_multiline_string_and_array(self) -> None:
        """Keys after a multi-line string and a multi-line array keep their true lines."""
        text = ('[program]\nname = """A\n[[rule]]\nkind = 1\n"""\n\n'
                '[[rule]]\nkind = "discount"\ncategories = [\n  "a",\n  "b",\n]\n'
                'percent = "x"\n')
        err = error_of(text)
        assert (err.key, err.line) == ("rule[0].percent", 13)
