"""The quote command, driven through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from pos_loyalty.cli import main

EXAMPLES = Path(__file__).parents[2] / "examples" / "programs"
CAFE = str(EXAMPLES / "cafe.toml")
BASKET = str(EXAMPLES / "try" / "cafe-basket.json")
MEMBER = str(EXAMPLES / "try" / "cafe-member.json")
NOW = "2026-06-14T15:00:00"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["quote", *args])
    return result.exit_code, result.stdout, result.stderr


class TestQuoteCommand:
    """Store IT tries a program on a basket."""

    def test_till_view(self) -> None:
        """The text view shows each effect, the totals and the till's one-line summary."""
        code, out, _ = run("--program", CAFE, "--basket", BASKET, "--member", MEMBER,
                           "--now", NOW)
        assert code == 0
        assert "10th coffee free: -3.50" in out
        assert "Due" in out and "24.30" in out
        assert "Till: 10th coffee free: -3.50 - +42 pts (1 pt per 1.00)" in out
        assert "Cost to the store: 5.10" in out  # 3.50 + 1.42 points + 0.18 expected prize

    def test_json(self) -> None:
        """--json gives lines, totals in minor units, explanations and the cost."""
        code, out, _ = run("--program", CAFE, "--basket", BASKET, "--member", MEMBER,
                           "--now", NOW, "--json")
        assert code == 0
        data = json.loads(out)
        assert (data["discount_total"], data["points_total"], data["total_due"]) == (350, 142,
                                                                                     2430)
        assert data["lines"][0] == {"program": "Corner Cafe", "kind": "discount", "value": 350,
                                    "text": "10th coffee free: -3.50", "rule": "coffee-card",
                                    "beneficiary": "", "label": "10th coffee free"}
        # the instant-win game offered costs its expected prize: 4.50 one time in 25
        assert data["cost"] == {"discounts": 350, "points_liability": 142, "perks": 18,
                                "total": 510}
        assert data["stamps_after"] == {"coffee": 0}

    def test_program_error_one_line_exit_2(self, tmp_path: Path) -> None:
        """A bad program is one line naming file, key and line, exit code 2."""
        bad = tmp_path / "bad.toml"
        bad.write_text('[program]\nname = "x"\n\n[[rule]]\nkind = "discount"\npercent = "ten"\n')
        code, _, err = run("--program", str(bad), "--basket", BASKET, "--now", NOW)
        assert code == 2
        assert err.strip().splitlines() == [
            f"Error: {bad}:6: key 'rule[0].percent': must be a percentage number, got 'ten'"]

    def test_bad_basket_and_time(self, tmp_path: Path) -> None:
        """A basket with a negative price, or an unreadable --now, is refused with exit 2."""
        b = tmp_path / "b.json"
        b.write_text(json.dumps({"lines": [{"sku": "x", "qty": 1, "unit_price": -5,
                                               "category": ""}]}))
        code, _, err = run("--program", CAFE, "--basket", str(b), "--now", NOW)
        assert code == 2 and "unit price must not be negative" in err
        code, _, err = run("--program", CAFE, "--basket", BASKET, "--now", "yesterday")
        assert code == 2 and "--now" in err
        b.write_text("{not json")
        code, _, err = run("--program", CAFE, "--basket", str(b), "--now", NOW)
        assert code == 2 and "not valid JSON" in err

    def test_bad_member_field(self, tmp_path: Path) -> None:
        """An unknown member field is named."""
        m = tmp_path / "m.json"
        m.write_text(json.dumps({"member_id": "x", "ballance": 5}))
        code, _, err = run("--program", CAFE, "--basket", BASKET, "--member", str(m))
        assert code == 2 and "ballance" in err
