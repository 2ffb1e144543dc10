"""quote(): the pure heart of the rules engine. No I/O, no clock: time is an argument.

A quote is an ordered chain of small stages (structlog's processor chain is the model):
each takes the sale's state (``kinds.Sale``: plain lists with one slot per basket line, so
a 200-line basket stays cheap) and the program, and calls on each rule that applies the hook
of its stage (``kinds.Rule``):

1. ``choose``: the rules whose member, shop and calendar conditions hold (shop-local day);
2. ``discounts``: discount kinds, group by group in the stacking order (best-of / combine /
   exclusive sets), each on what earlier groups left when ``compound`` is on, within the cap;
3. ``redemption``: points as money off, within the program's limits, never expired points;
4. ``earning``: earn rules on what is actually paid;
5. ``multipliers``: tier levels, paid membership, promotions on the earn rules' points;
6. ``rewards``: flat bonuses, threshold rewards, referral, membership, games, perks;
7. ``settling``: what the whole sale decides (a tier upgrade, for the next sale);
8. ``finish``: stamps after the sale, tax and per-line effects, as a ``Quote``.

Every money split across lines uses ``allocate`` (cumulative floor), so parts always add
up to the whole and a full refund reverses exactly what the sale did.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from pos_loyalty.errors import RulesError
from pos_loyalty.rules.amounts import allocate, bp_text, half_up, money
from pos_loyalty.rules.expiry import expiry_status
from pos_loyalty.rules.kinds import Applied, Rule, Sale
from pos_loyalty.rules.kinds.membership import member_of
from pos_loyalty.rules.model import Basket, LineEffect, MemberView, Quote, QuoteLine
from pos_loyalty.rules.program import Program
from pos_loyalty.rules.redeem import decide_redemption

__all__ = ["STAGES", "Stage", "check_member", "quote"]

Stage = Callable[[Sale, Program], None]


def quote(member: MemberView, basket: Basket, now: datetime, program: Program) -> Quote:
    """What this member gets for this basket at this time, each line explained.

    ``now`` is converted to the shop's time zone (``program.timezone``); a naive ``now`` is
    taken as shop-local already. Every date rule works on that local day.
    """
    if _not_partner(basket, program):
        return _no_points(basket, program)
    sale = _start(member, basket, now, program)
    for stage in STAGES:
        stage(sale, program)
    return _finish(sale, program)


def check_member(member: MemberView, program: Program) -> None:
    """Refuse member state the program cannot honour: a tier it does not define would
    silently lose every tier rule (the CLI and replay call this before quoting)."""
    levels = program.tier_levels()
    if member.tier is not None and member.tier not in levels:
        close = difflib.get_close_matches(member.tier, levels, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        known = f"its tiers are {', '.join(levels)}" if levels else "it defines no tiers"
        raise RulesError(f"member {member.member_id}: tier {member.tier!r} is not a tier of "
                         f"program {program.name!r}{hint}; {known}")


def _not_partner(basket: Basket, program: Program) -> bool:
    """A coalition program runs only at its partners (a basket without a merchant id is the
    program's own shop)."""
    c = program.coalition
    return bool(c and basket.merchant_id
                and all(p.merchant_id != basket.merchant_id for p in c.partners))


def _no_points(basket: Basket, program: Program) -> Quote:
    assert program.coalition is not None
    effects = tuple(LineEffect(ln.sku, ln.qty, ln.qty * ln.unit_price) for ln in basket.lines)
    total = sum(e.amount for e in effects)
    return Quote(lines=(), basket_total=total, effects=effects,
                 merchant_id=basket.merchant_id, qualifying_spend=total,
                 redeem_note=f"{basket.merchant_id} is not a partner of "
                             f"{program.coalition.name or program.name}: no points")


def _start(member: MemberView, basket: Basket, now: datetime, program: Program) -> Sale:
    lines = basket.lines
    sale = Sale(member, basket, program.local(now).date(), program_name=program.name,
                all_rules=program.active_rules, lines=lines)
    sale.amounts = [ln.qty * ln.unit_price for ln in lines]
    sale.cat_of = [ln.category for ln in lines]
    sale.sku_of = [ln.sku for ln in lines]
    sale.every = list(range(len(lines)))
    tax = program.tax
    if not tax.prices_include_tax and tax.discounts == "after_tax" and tax.rate_bp:
        sale.line_tax = [half_up(a * tax.rate_bp, 10000) for a in sale.amounts]
        sale.base = [a + t for a, t in zip(sale.amounts, sale.line_tax, strict=True)]
    else:
        sale.base = list(sale.amounts)
    sale.rem = list(sale.base)
    return sale


# -- 1. choose --------------------------------------------------------------------------


def choose(sale: Sale, program: Program) -> None:
    """Keep the rules whose member, shop and calendar conditions hold today."""
    for rule in program.active_rules:
        rule.before(sale)
    sale.rules = [r for r in program.active_rules if _holds(r, sale)]
    for rule in sale.rules:
        rule.prepare(sale)


def _holds(rule: Rule, sale: Sale) -> bool:
    c, member, today = rule.when, sale.member, sale.today
    if c.tiers and member.tier not in c.tiers:
        return False
    if c.segments and not (c.segments & member.segments):
        return False
    if c.merchants and sale.basket.merchant_id not in c.merchants:
        return False
    if c.valid_from and today < c.valid_from:
        return False
    if c.valid_until and today > c.valid_until:
        return False
    if c.weekdays and today.weekday() not in c.weekdays:
        return False
    if c.birthday and not _birthday_match(c.birthday, member, sale):
        return False
    if c.membership and not member_of(c.membership, sale):
        return False
    if not rule.applies(sale):
        return False
    if c.limit:
        last = member.claims.get(rule.id)
        if last is not None and (
            c.limit == "once"
            or (c.limit == "year" and last.year == today.year)
            or (c.limit == "day" and last == today)
        ):
            return False
    return True


def _birthday_match(mode: str, member: MemberView, sale: Sale) -> bool:
    birthday, today = member.birthday, sale.today
    if birthday is None:
        return False
    if mode == "month":
        return birthday.month == today.month
    try:
        this_year = birthday.replace(year=today.year)
    except ValueError:  # 29 February in a common year: celebrate on 28 February
        this_year = today.replace(month=2, day=28)
    if mode == "day":
        return this_year == today
    return abs((today - this_year).days) <= 3  # "week": three days either side


# -- 2. discounts -----------------------------------------------------------------------


def discounts(sale: Sale, program: Program) -> None:
    """Discount kinds, group by group, within the stacking rules and the overall cap."""
    n = len(sale.lines)
    cap_left = sum(sale.base) * program.stacking.max_discount_bp // 10000
    groups: list[str] = list(program.stacking.order)
    by_group: dict[str, list[Rule]] = {}
    for rule in sale.rules:
        if rule.DISCOUNT:
            by_group.setdefault(rule.group, []).append(rule)
            if rule.group not in groups:
                groups.append(rule.group)
    done: set[str] = set()
    for g in groups:
        if g in done or g not in by_group:
            continue
        ex = next((e for e in program.stacking.exclusive if g in e), None)
        candidates = [x for x in (ex or (g,)) if x in by_group and x not in done]
        done.update(ex or (g,))
        best: list[Applied] = []
        best_total = -1
        for cg in candidates:
            applied = _run_group(sale, program, by_group[cg])
            total = sum(a.total for a in applied)
            if total > best_total:
                best, best_total = applied, total
        for a in best:
            total = a.total
            if total <= 0:
                continue
            text = a.text
            if total > cap_left:
                if cap_left <= 0:
                    continue
                a.set_parts(allocate(cap_left, a.parts))  # a trimmed reward still uses
                total = cap_left                               # its stamps / coupon
                text = f"{text} (capped at {bp_text(program.stacking.max_discount_bp)})"
            cap_left -= total
            if len(a.idx) == n:
                sale.rem = [r - x for r, x in zip(sale.rem, a.parts, strict=True)]
            else:
                for i, x in zip(a.idx, a.parts, strict=True):
                    sale.rem[i] -= x
            sale.qlines.append(QuoteLine(a.rule.program, "discount", total,
                                         f"{text}: -{money(total)}", a.rule.id, label=text))
            _consume(sale, a, total)


def _consume(sale: Sale, a: Applied, total: int) -> None:
    """What a granted discount uses up: stamps, a coupon, credits (keeping their rest)."""
    if a.free_units:
        sale.consumed_cards[a.card] = list(a.free_units.items())
    if a.coupon:
        sale.coupons_used.append(a.coupon)
    given = total
    for credit, d in a.credits:  # a credit keeps what this sale did not use
        used = min(d, given)
        given -= used
        if used <= 0:
            continue
        left = credit.amount - min(credit.amount, used)
        if left > 0:
            sale.credits_left.append((credit.credit_id, left))
        else:
            sale.credits_used.append(credit.credit_id)
    if a.rule.when.limit:
        sale.claims.append(a.rule.id)


def _run_group(sale: Sale, program: Program, rules: list[Rule]) -> list[Applied]:
    """The discounts one stacking group gives on the current amounts (not yet applied)."""
    rem, base = sale.rem, sale.base
    single = len(rules) == 1
    work = rem if single else list(rem)  # read-only when there is nothing to chain
    compound = program.stacking.compound
    best_of = program.stacking.mode(rules[0].group) == "best_of"
    out: list[Applied] = []
    for rule in rules:
        src = rem if best_of else (work if compound else base)
        a = _discount(rule, sale, src, sale.eligible(rule))
        if a is None:
            continue
        if src is base:  # computed on full prices: never more than what is still payable
            a.set_parts([min(x, work[i]) for i, x in zip(a.idx, a.parts, strict=True)])
        if best_of or single:
            out.append(a)
            continue
        for i, x in zip(a.idx, a.parts, strict=True):
            work[i] -= x
        out.append(a)
    if best_of and out:
        return [max(out, key=lambda a: a.total)]
    return out


def _discount(rule: Rule, sale: Sale, amt: list[int], idx: list[int]) -> Applied | None:
    """One rule's discount on the amounts ``amt`` of lines ``idx``, or None."""
    if not idx:
        return None
    if rule.when.min_spend and sum(sale.amounts[i] for i in idx) < rule.when.min_spend:
        return None
    sub = amt if len(idx) == len(amt) else [amt[i] for i in idx]
    return rule.discount(sale, amt, idx, sub)


def tag_coupons(sale: Sale, program: Program) -> None:
    """Product tag coupons confirmed for the sale: each takes its percent off one unit of
    its product (offline: of the dearest unit), after the program's own discounts and
    outside their cap (the coupon was promised by the phone page and is already used)."""
    n = len(sale.lines)
    for c in sale.basket.coupons:
        units = [(sale.rem[i] // sale.lines[i].qty, -i) for i in range(n)
                 if (c.sku is None or sale.sku_of[i] == c.sku) and sale.rem[i] > 0]
        if not units:
            continue
        unit, neg_i = max(units)
        i = -neg_i
        value = half_up(unit * c.percent, 100)
        if c.max_value is not None:
            value = min(value, c.max_value)
        if value <= 0:
            continue
        sale.rem[i] -= value
        label = f"coupon {c.code}: {c.percent}% off one {sale.sku_of[i]}"
        sale.qlines.append(QuoteLine(program.name, "discount", value,
                                     f"{label}: -{money(value)}", f"coupon:{c.code}",
                                     label=label))


# -- 3. redemption ----------------------------------------------------------------------


def redemption(sale: Sale, program: Program) -> None:
    """Points as money off, never from points past their last day."""
    n = len(sale.lines)
    member, basket = sale.member, sale.basket
    sale.redeem_val = [0] * n
    sale.redeem_pts = [0] * n
    sale.expired, sale.expiring, sale.expiring_on = expiry_status(member, sale.today, program)
    if basket.redeem_points:
        spendable = member if not sale.expired else \
            replace(member, balance=member.balance - sale.expired)
        decision = decide_redemption(spendable, sum(sale.rem), basket.redeem_points, program)
        sale.redeem_note = decision.reason
        if decision.points:
            sale.redeem_points = decision.points
            sale.redeem_val = allocate(decision.value, sale.rem)
            sale.redeem_pts = allocate(decision.points, sale.redeem_val)
            label = f"{decision.points} pts redeemed"
            sale.qlines.append(QuoteLine(program.name, "redeem", decision.value,
                                         f"{label}: -{money(decision.value)}", "redemption",
                                         label=label))
    sale.paid = [r - v for r, v in zip(sale.rem, sale.redeem_val, strict=True)]
    sale.earn_base = sale.rem if program.rate.earn_on_redeemed else sale.paid
    sale.qualifying = sum(sale.paid)


# -- 4. to 7. points and rewards ----------------------------------------------------------


def earning(sale: Sale, program: Program) -> None:
    """Earn rules, on what is paid (net or gross of tax as the program says)."""
    tax, r_bp = program.tax, program.tax.rate_bp
    if tax.prices_include_tax or tax.discounts == "after_tax":
        sale.fnum, sale.fden = (10000, 10000 + r_bp) if tax.earn_on == "net" else (1, 1)
    else:
        sale.fnum, sale.fden = (10000 + r_bp, 10000) if tax.earn_on == "gross" else (1, 1)
    for rule in sale.rules:
        rule.earn(sale)


def multipliers(sale: Sale, program: Program) -> None:
    """Earn percents (tier, membership, promotions) on every earn rule's exact points; in a
    ``best_of`` group only the largest."""
    if not sale.exact:
        return
    by_group: dict[str, list[tuple[int, str, Rule]]] = {}
    for rule in sale.rules:
        got = rule.multiplier(sale)
        if got is not None and got[0] > 100:
            by_group.setdefault(rule.group, []).append((got[0], got[1], rule))
    for g, cands in by_group.items():
        chosen = cands
        if program.stacking.mode(g) == "best_of":
            chosen = [max(cands, key=lambda c: c[0])]
        for pct, text, rule in chosen:
            bonus = 0
            only = set(sale.eligible(rule)) if rule.when.filters_lines else None
            for factor, den, idx, w in sale.exact:
                if only is not None:  # a promotion on some products only
                    w = [x if i in only else 0 for i, x in zip(idx, w, strict=True)]
                b = sum(w) * factor * (pct - 100) // (den * 100)
                if b > 0:
                    sale.pend.append((b, idx, w))
                bonus += b
            if bonus > 0:
                sale.qlines.append(QuoteLine(rule.program, "points", bonus,
                                             f"{text}: +{bonus} pts", rule.id, label=text))
                if rule.when.limit:
                    sale.claims.append(rule.id)


def rewards(sale: Sale, program: Program) -> None:
    """Flat bonuses, threshold rewards, referral, membership, games, perks."""
    for rule in sale.rules:
        rule.reward(sale)


def settling(sale: Sale, program: Program) -> None:
    """What the whole sale decides, after every reward (a tier upgrade)."""
    for rule in sale.rules:
        rule.settle(sale)


STAGES: tuple[Stage, ...] = (choose, discounts, tag_coupons, redemption, earning,
                             multipliers, rewards, settling)
"""The quote's stages, in order."""


# -- 8. finish ----------------------------------------------------------------------------


def _finish(sale: Sale, program: Program) -> Quote:
    """Stamps after the sale, tax and per-line effects, as the Quote."""
    n = len(sale.lines)
    pts = _spread_points(sale, n)
    stamps_by_line: dict[int, dict[str, int]] = {}
    stamps_after: list[tuple[str, int]] = []
    for card, units in sale.stamp_units.items():
        held = sale.member.stamps.get(card, 0)
        gained = sum(u for _, u in units)
        for i, u in units:
            per = stamps_by_line.setdefault(i, {})
            per[card] = per.get(card, 0) + u
        used = 0
        every = sale.stamp_every[card]
        for i, u in sale.consumed_cards.get(card, []):
            per = stamps_by_line.setdefault(i, {})
            per[card] = per.get(card, 0) - u * every
            used += u * every
        stamps_after.append((card, held + gained - used))
    line_stamps: list[tuple[tuple[str, int], ...]] = [()] * n
    for i, per in stamps_by_line.items():
        line_stamps[i] = tuple(sorted((c, v) for c, v in per.items() if v))

    tax, r_bp, qualifying = program.tax, program.tax.rate_bp, sale.qualifying
    tax_total = tax_added = 0
    tax_share = [0] * n
    base = sale.base
    if r_bp:
        if tax.prices_include_tax:
            tax_total = qualifying - half_up(qualifying * 10000, 10000 + r_bp)
        elif tax.discounts == "after_tax":
            tax_total = tax_added = sum(sale.line_tax)
        else:
            tax_total = tax_added = half_up(qualifying * r_bp, 10000)
            tax_share = allocate(tax_added, sale.paid)
    disc = [b - r for b, r in zip(base, sale.rem, strict=True)]
    if tax_added and not sale.line_tax:
        base = [a + b for a, b in zip(base, tax_share, strict=True)]
    effects = tuple(map(LineEffect._make, zip(
        sale.sku_of, [ln.qty for ln in sale.lines], base, disc, sale.redeem_val,
        sale.redeem_pts, pts, line_stamps, strict=True)))
    all_points = sum(ln.value for ln in sale.qlines if ln.kind == "points")
    return Quote(
        lines=tuple(sale.qlines),
        basket_total=sum(sale.amounts),
        effects=effects,
        perks=tuple(sale.perks),
        tax_total=tax_total,
        tax_added=tax_added,
        redeem_points=sale.redeem_points,
        redeem_note=sale.redeem_note,
        points_liability=program.rate.liability(all_points),
        stamps_after=tuple(sorted(stamps_after)),
        coupons_used=tuple(sale.coupons_used),
        credits_used=tuple(sale.credits_used),
        credits_left=tuple(sale.credits_left),
        claims=tuple(dict.fromkeys(sale.claims)),
        merchant_id=sale.basket.merchant_id,
        qualifying_spend=qualifying,
        expired_points=sale.expired,
        expiring_points=sale.expiring,
        expiring_on=sale.expiring_on,
    )


def _spread_points(sale: Sale, n: int) -> list[int]:
    """Per-line points: components sharing the same weights are split together, once."""
    merged: dict[tuple[int, int], tuple[int, list[int], list[int]]] = {}
    for points, idx, w in sale.pend:
        key = (id(idx), id(w))
        got = merged.get(key)
        merged[key] = (points + (got[0] if got else 0), idx, w)
    pts = [0] * n
    for points, idx, w in merged.values():
        parts = allocate(points, w)
        if len(idx) == n:
            pts = [a + b for a, b in zip(pts, parts, strict=True)]
        else:
            for i, p in zip(idx, parts, strict=True):
                pts[i] += p
    return pts
