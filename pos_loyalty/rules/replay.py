"""Replay: a program run over past sales, totalled per rule, and compared with another. Pure.

Store IT replays last month's baskets before publishing a program: what it would have given
in points, discounts and perks, what that costs, rule by rule, and the difference against the
program running now. ``parse_sales`` reads the sales file's text (CSV or JSON lines, see
docs/rules.md) so the CLI and a console page share one reader; neither touches a file here.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pos_loyalty.errors import RulesError
from pos_loyalty.rules.engine import check_member, quote
from pos_loyalty.rules.kinds import Threshold
from pos_loyalty.rules.model import (
    Basket,
    BasketLine,
    MemberView,
    basket_from_dict,
    member_from_dict,
)
from pos_loyalty.rules.program import Program

SalesFormat = Literal["csv", "jsonl"]
CSV_REQUIRED = ("txn_id", "time", "sku", "qty", "unit_price", "category")
CSV_OPTIONAL = ("member_id", "tier", "merchant_id")
REDEMPTION = "redemption"


@dataclass(frozen=True)
class PastSale:
    """One past basket: when it was sold (shop-local when naive) and to whom."""

    txn_id: str
    when: datetime
    basket: Basket
    member: MemberView


@dataclass(frozen=True)
class RuleTotals:
    """What one rule gave over the replayed sales and what it cost the store."""

    rule: str
    sales: int = 0        # sales where the rule had an effect
    points: int = 0
    discounts: int = 0    # money off (for the redemption row: points paid as money)
    perks: int = 0        # value of coupons and prizes issued
    cost: int = 0         # discounts + liability of the points + perks


@dataclass(frozen=True)
class ReplayReport:
    """A program's effect on a set of past sales, per rule and in total."""

    program: str
    sales: int
    basket_total: int
    rules: tuple[RuleTotals, ...]
    total: RuleTotals

    def rule(self, rule_id: str) -> RuleTotals:
        return next((r for r in self.rules if r.rule == rule_id), RuleTotals(rule_id))


def replay(sales: Iterable[PastSale], program: Program) -> ReplayReport:
    """Quote every sale under ``program`` and add up each rule's points, money and cost.

    Liability is valued once per rule on its total points (rounding on totals, as
    everywhere in the engine). Members are taken as they were given, sale by sale: a
    replay answers "what would these baskets have got", not "how would balances evolve".
    """
    acc: dict[str, list[int]] = {}  # rule -> [sales, points, discounts, perks]
    perk_rule = _perk_rules(program)
    count = basket_total = 0
    for sale in sales:
        q = quote(sale.member, sale.basket, sale.when, program)
        count += 1
        basket_total += q.basket_total
        seen: set[str] = set()
        for ln in q.lines:
            rid = ln.rule or REDEMPTION
            row = acc.setdefault(rid, [0, 0, 0, 0])
            if ln.kind == "points":
                row[1] += ln.value
            else:
                row[2] += ln.value
            seen.add(rid)
        for perk in q.perks:
            if perk.value:
                rid = perk_rule.get(perk.code, perk.code)
                acc.setdefault(rid, [0, 0, 0, 0])[3] += perk.value
                seen.add(rid)
        for rid in seen:
            acc[rid][0] += 1
    order = {r.id: i for i, r in enumerate(program.active_rules)}
    rows = []
    for rid in sorted(acc, key=lambda r: (order.get(r, len(order)), r)):
        n, pts, money_off, perks = acc[rid]
        discounts = money_off if rid != REDEMPTION else 0
        cost = discounts + program.rate.liability(pts) + perks
        rows.append(RuleTotals(rid, n, pts, money_off, perks, cost))
    total = RuleTotals(
        "total", count, sum(r.points for r in rows),
        sum(r.discounts for r in rows), sum(r.perks for r in rows),
        sum(r.cost for r in rows))
    return ReplayReport(program.name, count, basket_total, tuple(rows), total)


def _perk_rules(program: Program) -> dict[str, str]:
    """Perk code -> the rule that issues it (threshold coupons, games, perks)."""
    out: dict[str, str] = {}
    for r in program.active_rules:
        if isinstance(r, Threshold) and r.coupon:
            out[f"coupon:{r.coupon}"] = r.id
        out[f"perk:{r.id}"] = r.id
        out[f"game:{r.id}"] = r.id
    return out


@dataclass(frozen=True)
class Difference:
    """One rule's figures under the new program beside the old one."""

    rule: str
    new: RuleTotals
    old: RuleTotals

    @property
    def cost_change(self) -> int:
        return self.new.cost - self.old.cost

    @property
    def points_change(self) -> int:
        return self.new.points - self.old.points


def compare(new: ReplayReport, old: ReplayReport) -> tuple[Difference, ...]:
    """Rule by rule (new program's rules first, then rules only the old one had), and the
    total last."""
    ids = [r.rule for r in new.rules] + [r.rule for r in old.rules
                                         if r.rule not in {x.rule for x in new.rules}]
    rows = [Difference(rid, new.rule(rid), old.rule(rid)) for rid in ids]
    rows.append(Difference("total", new.total, old.total))
    return tuple(rows)


def parse_sales(lines: Iterable[str], fmt: SalesFormat, program: Program,
                *, source: str = "sales") -> Iterator[PastSale]:
    """Past sales from a file's lines, checked as the till's input would be.

    CSV: one row per basket line, header ``txn_id,time,sku,qty,unit_price,category`` and
    optionally ``member_id,tier,merchant_id``; the rows of one sale are consecutive.
    JSON lines: one sale per line, ``{"txn_id", "time", "lines": [...], "merchant_id",
    "redeem_points", "member": {...}}``. ``time`` is ISO 8601; without an offset it is
    shop-local. Errors name the source and line.
    """
    if fmt == "csv":
        return _from_csv(lines, program, source)
    return _from_jsonl(lines, program, source)


def _time(text: Any, where: str) -> datetime:
    try:
        return datetime.fromisoformat(str(text))
    except ValueError as exc:
        raise RulesError(f"{where}: time must be ISO 8601, got {text!r}") from exc


def _from_jsonl(lines: Iterable[str], program: Program, source: str) -> Iterator[PastSale]:
    checked: set[str | None] = set()
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        where = f"{source}:{number}"
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise RulesError(f"{where}: not JSON: {exc.msg}") from exc
        if not isinstance(data, dict):
            raise RulesError(f"{where}: a sale must be a JSON object")
        try:
            txn = str(data.pop("txn_id"))
            when = _time(data.pop("time"), where)
        except KeyError as exc:
            raise RulesError(f"{where}: {exc.args[0]!r} is missing") from exc
        try:
            member = member_from_dict(data.pop("member", None) or {"member_id": ""})
            basket = basket_from_dict(data)
            if member.tier not in checked:
                check_member(member, program)
                checked.add(member.tier)
        except RulesError as exc:
            raise RulesError(f"{where}: {exc}") from exc
        yield PastSale(txn, when, basket, member)


def _from_csv(lines: Iterable[str], program: Program, source: str) -> Iterator[PastSale]:
    reader = csv.DictReader(iter(lines))
    header = reader.fieldnames or []
    missing = [c for c in CSV_REQUIRED if c not in header]
    unknown = [c for c in header if c not in CSV_REQUIRED + CSV_OPTIONAL]
    if missing or unknown:
        raise RulesError(f"{source}:1: header needs {', '.join(CSV_REQUIRED)} (optional "
                         f"{', '.join(CSV_OPTIONAL)}); missing {missing}, unknown {unknown}")
    done: set[str] = set()
    checked: set[str | None] = set()
    rows: list[BasketLine] = []
    head: dict[str, str] = {}
    start = 2

    def sale() -> PastSale:
        where = f"{source}:{start}"
        tier = head.get("tier") or None
        member = MemberView(member_id=head.get("member_id") or "", tier=tier)
        if tier not in checked:
            try:
                check_member(member, program)
            except RulesError as exc:
                raise RulesError(f"{where}: {exc}") from exc
            checked.add(tier)
        basket = Basket(tuple(rows), merchant_id=head.get("merchant_id") or "")
        return PastSale(head["txn_id"], _time(head["time"], where), basket, member)

    for number, row in enumerate(reader, start=2):
        where = f"{source}:{number}"
        if None in row or any(v is None for v in row.values()):
            raise RulesError(f"{where}: wrong number of columns")
        txn = row["txn_id"]
        if rows and txn != head["txn_id"]:
            yield sale()
            rows = []
        if not rows:
            if txn in done:
                raise RulesError(f"{where}: rows of sale {txn!r} must be consecutive")
            done.add(txn)
            head, start = row, number
        try:
            rows.append(BasketLine(row["sku"], int(row["qty"]), int(row["unit_price"]),
                                   row["category"]))
        except ValueError as exc:
            raise RulesError(f"{where}: qty and unit_price must be integers ({exc})") from exc
        except RulesError as exc:
            raise RulesError(f"{where}: {exc}") from exc
    if rows:
        yield sale()
