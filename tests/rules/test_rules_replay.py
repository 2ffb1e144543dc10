"""Replay: store IT runs a program over past baskets before publishing it."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from pos_loyalty.cli import main
from pos_loyalty.errors import RulesError
from pos_loyalty.rules import compare, load_program, parse_sales, quote, replay

EXAMPLES = Path(__file__).parents[2] / "examples" / "programs"
CAFE = load_program(EXAMPLES / "cafe.toml")
POINTS = load_program(EXAMPLES / "01-points.toml")

CSV = """txn_id,time,sku,qty,unit_price,category,member_id,merchant_id
S1,2026-03-11T09:00,latte,2,350,coffee,M1,CAFE-1
S1,2026-03-11T09:00,croissant,1,280,pastry,M1,CAFE-1
S2,2026-03-14T10:30,beans-1kg,1,1800,beans,,CAFE-1
S3,2026-03-12T16:00,croissant,3,280,pastry,M2,CAFE-1
"""


def as_jsonl(csv_text: str) -> str:
    """The same sales as JSON lines (one object per sale)."""
    out: dict[str, dict[str, object]] = {}
    for row in csv_text.splitlines()[1:]:
        txn, time, sku, qty, price, cat, member, merchant = row.split(",")
        sale = out.setdefault(txn, {"txn_id": txn, "time": time, "merchant_id": merchant,
                                    "member": {"member_id": member}, "lines": []})
        lines = sale["lines"]
        assert isinstance(lines, list)
        lines.append({"sku": sku, "qty": int(qty), "unit_price": int(price), "category": cat})
    return "\n".join(json.dumps(s) for s in out.values()) + "\n"


class TestReplay:
    """Totals per rule are the sums of the quotes the sales would have got."""

    def test_totals_are_the_sum_of_quotes(self) -> None:
        """Each rule's points and money off add up to what the single quotes say."""
        sales = list(parse_sales(CSV.splitlines(keepends=True), "csv", CAFE))
        report = replay(sales, CAFE)
        quotes = [quote(s.member, s.basket, s.when, CAFE) for s in sales]
        assert report.sales == 3
        assert report.total.points == sum(q.points_total for q in quotes)
        assert report.total.discounts == sum(q.discount_total for q in quotes)
        assert report.total.perks == sum(q.perks_value for q in quotes)
        pastry = report.rule("happy-hour")  # weekday pastry 20%: S1 and S3, not Saturday S2
        assert (pastry.sales, pastry.discounts) == (2, 56 + 168)
        assert report.basket_total == 700 + 280 + 1800 + 840

    def test_csv_and_json_lines_agree(self) -> None:
        """The two documented formats give the same report."""
        a = replay(parse_sales(CSV.splitlines(keepends=True), "csv", CAFE), CAFE)
        b = replay(parse_sales(as_jsonl(CSV).splitlines(), "jsonl", CAFE), CAFE)
        assert a == b

    def test_against_the_running_program(self) -> None:
        """The comparison lists each rule's cost under both programs and the change."""
        sales = list(parse_sales(CSV.splitlines(keepends=True), "csv", CAFE))
        new, old = replay(sales, CAFE), replay(sales, POINTS)
        rows = {d.rule: d for d in compare(new, old)}
        assert rows["total"].cost_change == new.total.cost - old.total.cost
        assert rows["happy-hour"].old.cost == 0 and rows["happy-hour"].new.cost == 224
        assert rows["points"].points_change == new.rule("points").points - old.rule(
            "points").points

    @pytest.mark.parametrize(("text", "message"), [
        ("txn_id,time,sku,qty\nS1,2026-01-01,a,1\n", "header needs"),
        (CSV + "S1,2026-03-11T09:00,x,1,100,coffee,M1,CAFE-1\n", ":6: rows of sale 'S1'"),
        (CSV.replace("2,350", "two,350"), ":2: qty and unit_price must be integers"),
        (CSV.replace("2026-03-14T10:30", "Saturday"), ":4: time must be ISO 8601"),
    ])
    def test_bad_rows_name_their_line(self, text: str, message: str) -> None:
        """A bad file is refused with the line at fault."""
        with pytest.raises(RulesError, match=message):
            list(parse_sales(text.splitlines(keepends=True), "csv", CAFE, source="s.csv"))

    def test_unknown_tier_in_sales(self) -> None:
        """A sale for a member in a tier the program lacks is refused, not quoted bare."""
        line = json.dumps({"txn_id": "S1", "time": "2026-03-11T09:00", "lines": [],
                           "member": {"member_id": "M", "tier": "Gld"}})
        tiers = load_program(EXAMPLES / "06-tiers.toml")
        with pytest.raises(RulesError, match=r"s.jsonl:1: .*did you mean 'Gold'"):
            list(parse_sales([line], "jsonl", tiers, source="s.jsonl"))


class TestReplayCommand:
    """pos-loyalty quote --replay SALES [--against OLD.toml]."""

    def test_report_and_difference(self, tmp_path: Path) -> None:
        """The report shows rules and totals, then the change against the old program."""
        sales = tmp_path / "sales.csv"
        sales.write_text(CSV)
        res = CliRunner().invoke(main, ["quote", "--program", str(EXAMPLES / "cafe.toml"),
                                        "--replay", str(sales), "--against",
                                        str(EXAMPLES / "01-points.toml")])
        assert res.exit_code == 0, res.output
        assert "Corner Cafe: 3 sales, baskets 36.20" in res.output
        assert "happy-hour" in res.output and "against Points:" in res.output
        res = CliRunner().invoke(main, ["quote", "--program", str(EXAMPLES / "cafe.toml"),
                                        "--replay", str(sales), "--json"])
        data = json.loads(res.output)
        assert data["program"]["sales"] == 3

    def test_bad_sales_file_exit_2(self, tmp_path: Path) -> None:
        """A malformed sales file is one line naming the file and line, exit code 2."""
        sales = tmp_path / "sales.jsonl"
        sales.write_text('{"txn_id": "S1", "time": "2026-03-11T09:00", "lines": []}\n{oops\n')
        res = CliRunner().invoke(main, ["quote", "--program", str(EXAMPLES / "cafe.toml"),
                                        "--replay", str(sales)])
        assert res.exit_code == 2 and f"{sales}:2: not JSON" in res.stderr


def test_naive_time_is_shop_local() -> None:
    """A replayed time without offset is the shop's wall clock (as the till saw it)."""
    s = next(iter(parse_sales(CSV.splitlines(keepends=True), "csv", CAFE)))
    assert s.when == datetime(2026, 3, 11, 9, 0)
