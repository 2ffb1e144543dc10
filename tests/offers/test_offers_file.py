"""The offers file: documented example parses; mistakes name the file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from pos_loyalty.errors import ConfigError
from pos_loyalty.offers.file import load_offers, parse_offers
from pos_loyalty.rules import load_program
from pos_loyalty.rules.parse import parse_text

ROOT = Path(__file__).resolve().parents[2]

OK = '''
[[offer]]
id = "bday"
coupon = "BDAY"
[offer.target]
birthday = "this month"
'''


def error(text: str) -> str:
    with pytest.raises(ConfigError) as got:
        parse_offers(text, path="offers.toml")
    return str(got.value)


class TestFile:
    def test_example_parses(self) -> None:
        """examples/offers.toml is the documented file: three offers, all rules on."""
        f = load_offers(ROOT / "examples" / "offers.toml")
        assert [o.id for o in f.offers] == ["winback", "girls-10", "birthday"]
        girls = f.offers[1]
        assert girls.target.bought is not None
        assert girls.target.bought.sku == "*-G10"
        assert f.offers[0].target.segments == ("lapsed regular",)
        assert (girls.cap_times, girls.cap_days, girls.valid_days) == (1, 60, 21)
        assert f.cashier.birthday and f.cashier.welcome_back and f.cashier.usually_buys
        program = load_program(ROOT / "examples" / "offers-program.toml")
        f.check_coupons([("examples/offers-program.toml", program)])  # the pair fits

    def test_errors_name_line_and_key(self) -> None:
        assert "offers.toml:5: key 'offer[0].cap.times'" in error(
            OK.replace('[offer.target]', 'cap = { times = 0 }\n[offer.target]'))
        assert "offers.toml:6: key 'offer[0].target.birthday'" in error(
            OK.replace('"this month"', '"today"'))
        assert "key 'offer[0].target.segment'" in error(
            OK.replace('birthday = "this month"', ''))
        assert "unknown key" in error(OK + 'blast = true\n')
        assert "duplicate offer id 'bday'" in error(OK + OK)
        assert "key 'offer[0].target.bought.category'" in error(
            OK.replace('birthday = "this month"', 'bought = { days = 30 }'))
        assert "offers.toml:1: TOML syntax" in error("[[offer]\n")
        msg = error(OK.replace('birthday = "this month"', 'segment = "lapsed regulars"'))
        assert "offers.toml:6: key 'offer[0].target.segment': unknown segment" in msg
        assert "did you mean 'lapsed_regular'" in msg
        assert "unknown stage" in error(OK.replace('birthday = "this month"',
                                                   'stages = ["regular", "vip"]'))
        both = error(OK.replace('birthday = "this month"',
                                'segment = "loyal"\nsegments = ["champions", "vips"]'))
        assert "offers.toml:7: key 'offer[0].target.segments': unknown segment 'vips'" in both

    def test_coupon_must_be_a_member_coupon_of_every_live_program(self) -> None:
        """The code must be a bound = "member" coupon rule; a near miss is hinted."""
        f = parse_offers(OK, path="offers.toml")
        good = parse_text('[[rule]]\nid = "b"\nkind = "coupon"\ncode = "BDAY"\npercent = 5\n')
        near = parse_text('[[rule]]\nid = "b"\nkind = "coupon"\ncode = "BDAY1"\npercent = 5\n')
        f.check_coupons([("chain", good)])
        with pytest.raises(ConfigError) as got:
            f.check_coupons([("chain", good), ("store S-2", near)])
        assert "offers.toml:4: key 'offer[0].coupon'" in str(got.value)
        assert "store S-2" in str(got.value) and "did you mean 'BDAY1'" in str(got.value)
        with pytest.raises(ConfigError, match="no program is published"):
            f.check_coupons([])
