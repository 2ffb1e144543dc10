"""``pos-loyalty quote``: try a program on a basket before publishing it.

This is an edge: it reads files and, without ``--now``, the clock; the engine it calls
stays pure. Every bad input is one line naming the file (and for programs the key and
line), exit code 2.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from pos_loyalty.errors import ConfigError, RulesError
from pos_loyalty.rules.engine import money, quote
from pos_loyalty.rules.model import Quote, basket_from_dict, member_from_dict
from pos_loyalty.rules.program import Program, load_program


class InputError(click.ClickException):
    """A bad program, basket or member file: one line, exit 2."""

    exit_code = 2


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read {what} file: {exc.strerror}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: {what} file is not valid JSON: {exc}") from exc


def render(q: Quote, program: Program) -> str:
    """The quote as the till shows it: effects, totals, the one-line summary, the cost."""
    width = 44
    out = [program.name]
    for ln in q.lines:
        out.append(f"  {ln.text}")
    for perk in q.perks:
        out.append(f"  * {perk.text}")
    out.append(f"{'Basket':<{width - 12}}{money(q.basket_total):>12}")
    if q.discount_total:
        out.append(f"{'Discounts':<{width - 12}}{'-' + money(q.discount_total):>12}")
    if q.redeem_value:
        out.append(f"{'Paid with points':<{width - 12}}{'-' + money(q.redeem_value):>12}")
    if q.tax_added:
        out.append(f"{'Tax':<{width - 12}}{money(q.tax_added):>12}")
    out.append(f"{'Due':<{width - 12}}{money(q.total_due):>12}")
    out.append(f"{'Points':<{width - 12}}{'+' + str(q.points_total):>12}")
    out.append(f"Till: {q.summary}")
    out.append(f"Cost to the store: {money(q.cost)} (discounts {money(q.discount_total)}"
               f" + points liability {money(q.points_liability)})")
    return "\n".join(out)


@click.command("quote")
@click.option("--program", "program_path", required=True,
              type=click.Path(dir_okay=False, path_type=Path), help="Program TOML file.")
@click.option("--basket", "basket_path", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Basket JSON (the till's basket.update: lines of sku, qty, unit_price, "
                   "category; optional merchant_id, redeem_points).")
@click.option("--member", "member_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Member JSON (MemberView fields); without it an anonymous new member.")
@click.option("--now", "now_text", help="Time of the sale, ISO 8601 (default: now).")
@click.option("--json", "as_json", is_flag=True, help="Print the quote as JSON.")
def quote_command(program_path: Path, basket_path: Path, member_path: Path | None,
                  now_text: str | None, as_json: bool) -> None:
    """Show what a basket would get under a program, as the till would show it."""
    try:
        program = load_program(program_path)
    except ConfigError as exc:
        raise InputError(str(exc)) from exc
    try:
        basket = basket_from_dict(_read_json(basket_path, "basket"))
    except RulesError as exc:
        raise InputError(f"{basket_path}: {exc}") from exc
    try:
        member = member_from_dict(_read_json(member_path, "member")) if member_path \
            else member_from_dict({"member_id": "anonymous"})
    except RulesError as exc:
        raise InputError(f"{member_path}: {exc}") from exc
    if now_text:
        try:
            now = datetime.fromisoformat(now_text)
        except ValueError as exc:
            raise InputError(f"--now: not an ISO 8601 time: {now_text!r}") from exc
    else:
        now = datetime.now().astimezone()
    try:
        q = quote(member, basket, now, program)
    except RulesError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        data = {"program": program.name, "member_id": member.member_id,
                "now": now.isoformat(), **q.to_dict()}
        click.echo(json.dumps(data, indent=2, sort_keys=False))
    else:
        click.echo(render(q, program))
