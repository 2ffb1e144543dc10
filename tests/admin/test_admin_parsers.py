"""Pure parts store IT's commands rest on: the members CSV parser and the program diff."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pos_loyalty.rules import parse_program
from pos_loyalty.server.members.queries import MemberError, parse_import
from pos_loyalty.server.programs.queries import diff

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples" / "programs").glob("*.toml"))


class TestImportParser:
    @settings(max_examples=300, deadline=None)
    @given(st.text(max_size=400))
    def test_any_text_parses_or_names_its_line(self, text: str) -> None:
        """Whatever the file holds, the parser returns rows or one MemberError with a line."""
        try:
            rows = parse_import("member_id,display_name,birthday,card_id\n" + text, "m.csv")
        except MemberError as exc:
            assert str(exc).startswith("m.csv: line ")
        else:
            assert len({r.member_id for r in rows}) == len(rows)

    def test_only_the_columns_present_are_fields(self) -> None:
        """A column left out is not a field of the row (so update keeps it)."""
        [row] = parse_import("member_id,tier\nM-1,gold\n")
        assert row.fields == {"tier": "gold"} and row.card_id is None


class TestDiff:
    def test_a_program_against_itself_has_no_difference(self) -> None:
        """Every example program compared with itself says nothing."""
        for path in EXAMPLES:
            program = parse_program(path.read_text(), path=str(path))
            assert diff(program, program) == [], path.name

    def test_different_examples_are_told_apart_in_words(self) -> None:
        """Consecutive examples differ, and every change is one readable sentence."""
        programs = [parse_program(p.read_text(), path=str(p)) for p in EXAMPLES]
        for a, b in pairwise(programs):
            lines = diff(a, b)
            assert lines, (a.name, b.name)
            assert all(line and "\n" not in line and "object at 0x" not in line
                       for line in lines)

    def test_tier_earn_rate_change_reads_as_an_owner_says_it(self) -> None:
        """An earn rule limited to Gold says so beside the rate change."""
        base = ('[program]\nname = "P"\ntiers = ["Gold"]\n[[rule]]\nid = "g"\n'
                'kind = "earn"\nlabel = "Gold"\npoints = {n}\nper = 100\n'
                'tiers = ["Gold"]\n')
        old, new = parse_program(base.format(n=1)), parse_program(base.format(n=2))
        assert diff(old, new) == ["earn rate 1 -> 2 pts per 1.00 for Gold"]
