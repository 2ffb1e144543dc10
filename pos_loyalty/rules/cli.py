"""``pos-loyalty quote``: try a program on a basket, or replay past sales, before publishing.

This is an edge: it reads files and, without ``--now``, the clock; the engine it calls
stays pure. Every bad input is one line naming the file (and for programs the key and
line), exit code 2.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from pos_loyalty.errors import ConfigError, RulesError
from pos_loyalty.rules.engine import check_member, quote
from pos_loyalty.rules.files import load_program
from pos_loyalty.rules.model import Quote, basket_from_dict, member_from_dict, money
from pos_loyalty.rules.program import Program
from pos_loyalty.rules.replay import ReplayReport, SalesFormat, compare, parse_sales, replay


class InputError(click.ClickException):
    """A bad program, basket, member or sales file: one line, exit 2."""

    exit_code = 2


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read {what} file: {exc.strerror}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: {what} file is not valid JSON: {exc}") from exc


def _program(path: Path) -> Program:
    try:
        return load_program(path)
    except ConfigError as exc:
        raise InputError(str(exc)) from exc


def render(q: Quote, program: Program) -> str:
    """The quote as the till and the receipt show it, with the totals and the cost."""
    width = 40
    out = [program.name, *(f"  {line}" for line in q.receipt)]
    out.append(f"{'Basket':<{width - 12}}{money(q.basket_total):>12}")
    if q.discounts:
        out.append(f"{'  discounts':<{width - 12}}{'-' + money(q.discounts):>12}")
    if q.redeem_value:
        out.append(f"{'  paid with points':<{width - 12}}{'-' + money(q.redeem_value):>12}")
    if q.discount_total:
        out.append(f"{'Money off (discount_total)':<{width - 12}}"
                   f"{'-' + money(q.discount_total):>12}")
    if q.tax_added:
        out.append(f"{'Tax':<{width - 12}}{money(q.tax_added):>12}")
    out.append(f"{'Due':<{width - 12}}{money(q.total_due):>12}")
    out.append(f"{'Points':<{width - 12}}{'+' + str(q.points_total):>12}")
    first, second = q.display
    out.append(f"Display: [{first:<20}]")
    out.append(f"         [{second:<20}]")
    out.append(f"Till: {q.summary}")
    out.append(f"Cost to the store: {money(q.cost)} (discounts {money(q.discounts)}"
               f" + points liability {money(q.points_liability)}"
               f" + coupons and prizes {money(q.perks_value)})")
    return "\n".join(out)


def render_replay(new: ReplayReport, old: ReplayReport | None) -> str:
    """Per rule and in total: points, money off, perks, cost (and the change against old)."""
    head = f"{'rule':<22}{'sales':>8}{'points':>10}{'money off':>12}{'perks':>10}{'cost':>12}"
    out = [f"{new.program}: {new.sales} sales, baskets {money(new.basket_total)}", head]
    for r in (*new.rules, new.total):
        out.append(f"{r.rule[:21]:<22}{r.sales:>8}{r.points:>10}{money(r.discounts):>12}"
                   f"{money(r.perks):>10}{money(r.cost):>12}")
    if old is not None:
        out.append("")
        out.append(f"against {old.program}:")
        out.append(f"{'rule':<22}{'old cost':>12}{'new cost':>12}{'change':>12}{'points':>10}")
        for d in compare(new, old):
            out.append(f"{d.rule[:21]:<22}{money(d.old.cost):>12}{money(d.new.cost):>12}"
                       f"{money(d.cost_change):>12}{d.points_change:>+10}")
    return "\n".join(out)


def _replay(program: Program, sales_path: Path, against: Path | None, as_json: bool) -> None:
    fmt: SalesFormat = "csv" if sales_path.suffix.lower() == ".csv" else "jsonl"
    old_program = _program(against) if against else None
    try:
        with sales_path.open(encoding="utf-8", newline="") as f:
            sales = list(parse_sales(f, fmt, program, source=str(sales_path)))
    except OSError as exc:
        raise InputError(f"{sales_path}: cannot read sales file: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{sales_path}: sales file is not UTF-8 text: {exc.reason}") from exc
    except RulesError as exc:
        raise InputError(str(exc)) from exc
    try:
        new = replay(sales, program)
        old = replay(sales, old_program) if old_program else None
    except RulesError as exc:
        raise InputError(str(exc)) from exc
    if as_json:
        data: dict[str, Any] = {"program": asdict(new)}
        if old is not None:
            data["against"] = asdict(old)
            data["changes"] = [{"rule": d.rule, "cost": d.cost_change,
                                "points": d.points_change} for d in compare(new, old)]
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(render_replay(new, old))


@click.command("quote")
@click.option("--program", "program_path", required=True,
              type=click.Path(dir_okay=False, path_type=Path), help="Program TOML file.")
@click.option("--basket", "basket_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Basket JSON (the till's basket.update: lines of sku, qty, unit_price, "
                   "category; optional merchant_id, redeem_points).")
@click.option("--member", "member_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Member JSON (MemberView fields); without it an anonymous new member.")
@click.option("--now", "now_text",
              help="Time of the sale, ISO 8601; without an offset it is shop-local time "
                   "(default: now, in the program's timezone).")
@click.option("--replay", "sales_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Past sales (.csv, or JSON lines) to run the program over, totalled per "
                   "rule (see docs/rules.md).")
@click.option("--against", "against_path", type=click.Path(dir_okay=False, path_type=Path),
              help="With --replay: a second program (the one running now) to compare with.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def quote_command(program_path: Path, basket_path: Path | None, member_path: Path | None,
                  now_text: str | None, sales_path: Path | None, against_path: Path | None,
                  as_json: bool) -> None:
    """Show what a basket would get under a program, as the till would show it."""
    program = _program(program_path)
    if sales_path is not None:
        _replay(program, sales_path, against_path, as_json)
        return
    if against_path is not None:
        raise click.UsageError("--against needs --replay")
    if basket_path is None:
        raise click.UsageError("give --basket (one sale) or --replay (past sales)")
    try:
        basket = basket_from_dict(_read_json(basket_path, "basket"))
    except RulesError as exc:
        raise InputError(f"{basket_path}: {exc}") from exc
    try:
        member = member_from_dict(_read_json(member_path, "member")) if member_path \
            else member_from_dict({"member_id": "anonymous"})
        check_member(member, program)
    except RulesError as exc:
        raise InputError(f"{member_path}: {exc}") from exc
    if now_text:
        try:
            now = datetime.fromisoformat(now_text)
        except ValueError as exc:
            raise InputError(f"--now: not an ISO 8601 time: {now_text!r}") from exc
    else:
        now = datetime.now(UTC)  # the engine turns it into the shop's local time
    try:
        q = quote(member, basket, now, program)
    except RulesError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        data = {"program": program.name, "member_id": member.member_id,
                "now": program.local(now).isoformat(), "timezone": program.timezone or "UTC",
                **q.to_dict(), "display": list(q.display), "receipt": list(q.receipt)}
        click.echo(json.dumps(data, indent=2, sort_keys=False))
    else:
        click.echo(render(q, program))
