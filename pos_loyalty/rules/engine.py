"""quote(): the pure heart of the rules engine. No I/O, no clock: time is an argument.

The sale goes through fixed stages, each a small function over plain lists of integers
(one slot per basket line) so a 200-line basket stays cheap:

1. which rules apply to this member, shop and day (``_applies``);
2. discounts, group by group in the stacking order (best-of / combine / exclusive sets),
   each computed on what earlier groups left when ``compound`` is on;
3. redemption of points as money off, within the program's limits;
4. points: earn rules on what is actually paid, then multipliers (tiers, membership,
   promotions), flat bonuses, threshold rewards, referral;
5. perks (coupons issued, membership started, tier upgrade, game offered) and tax.

Every money split across lines uses ``allocate`` (cumulative floor), so parts always add
up to the whole and a full refund reverses exactly what the sale did.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from itertools import accumulate, chain
from operator import sub

from pos_loyalty.errors import RulesError
from pos_loyalty.rules.expiry import expiry_status
from pos_loyalty.rules.model import (
    Basket,
    BasketLine,
    Credit,
    LineEffect,
    MemberView,
    Perk,
    Quote,
    QuoteLine,
    money,
)
from pos_loyalty.rules.program import Conditions, Level, Program, Rule
from pos_loyalty.rules.redeem import decide_redemption

DISCOUNT_KINDS = frozenset({"discount", "progressive", "stamps", "coupon", "credit",
                            "membership"})


def half_up(num: int, den: int) -> int:
    """num/den rounded half up (both non-negative)."""
    return (2 * num + den) // (2 * den)


def allocate(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` over ``weights`` by cumulative floor: parts sum to ``total`` exactly,
    each part is within 1 of its proportional share and never above its weight when
    ``total <= sum(weights)``. All-zero weights put everything on the first slot."""
    if not weights:
        return []
    cums = list(accumulate(weights))
    s = cums[-1]
    if s == 0:
        return [total] + [0] * (len(weights) - 1)
    if total == 0:
        return [0] * len(weights)
    marks = [total * c // s for c in cums]
    return list(map(sub, marks, chain((0,), marks)))


def _pct_text(percent: int) -> str:
    if percent % 100 == 0:
        return f"x{percent // 100}"
    return f"+{percent - 100}%"


def _bp_text(bp: int) -> str:
    return f"{bp // 100}%" if bp % 100 == 0 else f"{bp / 100:g}%"


def _applies(c: Conditions, rule: Rule, member: MemberView, basket: Basket, today: date,
             fee_plans: frozenset[str]) -> bool:
    """The rule's member, shop and calendar conditions (line filters come later)."""
    if c.tiers and member.tier not in c.tiers:
        return False
    if c.segments and not (c.segments & member.segments):
        return False
    if c.merchants and basket.merchant_id not in c.merchants:
        return False
    if c.valid_from and today < c.valid_from:
        return False
    if c.valid_until and today > c.valid_until:
        return False
    if c.weekdays and today.weekday() not in c.weekdays:
        return False
    if c.birthday and not _birthday_match(c.birthday, member.birthday, today):
        return False
    if c.membership and not _member_of(c.membership, member, today, fee_plans):
        return False
    if rule.kind == "membership" and not _member_of(rule.plan, member, today, fee_plans):
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


def _member_of(plan: str, member: MemberView, today: date, fee_plans: frozenset[str]) -> bool:
    if plan in fee_plans:
        return True
    return (member.membership == plan and member.membership_expires is not None
            and member.membership_expires >= today)


def _birthday_match(mode: str, birthday: date | None, today: date) -> bool:
    if birthday is None:
        return False
    if mode == "month":
        return birthday.month == today.month
    try:
        this_year = birthday.replace(year=today.year)
    except ValueError:  # 29 February in a common year: celebrate on 28 February
        this_year = date(today.year, 2, 28)
    if mode == "day":
        return this_year == today
    return abs((today - this_year).days) <= 3  # "week": three days either side


def _eligible(c: Conditions, cat_of: list[str], sku_of: list[str],
              every: list[int]) -> list[int]:
    """Indices of the lines a rule's product filters let through."""
    if not c.filters_lines:
        return every
    cats, skus, xc, xs = c.categories, c.skus, c.exclude_categories, c.exclude_skus
    if cats and skus:
        idx = [i for i in every if cat_of[i] in cats or sku_of[i] in skus]
    elif cats:
        idx = [i for i, cat in enumerate(cat_of) if cat in cats]
    elif skus:
        idx = [i for i, sku in enumerate(sku_of) if sku in skus]
    else:
        idx = every
    if xc:
        idx = [i for i in idx if cat_of[i] not in xc]
    if xs:
        idx = [i for i in idx if sku_of[i] not in xs]
    return idx


@dataclass
class _Applied:
    """A discount a rule would give: per-line amounts plus what it consumes."""

    rule: Rule
    idx: list[int]
    parts: list[int]
    text: str
    free_units: dict[int, int] = field(default_factory=dict)
    coupon: str = ""
    credits: tuple[tuple[Credit, int], ...] = ()  # each credit with the money it gives
    total: int = 0

    def __post_init__(self) -> None:
        self.total = sum(self.parts)

    def set_parts(self, parts: list[int]) -> None:
        self.parts = parts
        self.total = sum(parts)


def _level(rule: Rule | None, name: str | None) -> Level | None:
    if rule is None or name is None:
        return None
    for lv in rule.levels:
        if lv.name == name:
            return lv
    return None


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


def quote(member: MemberView, basket: Basket, now: datetime, program: Program) -> Quote:
    """What this member gets for this basket at this time, each line explained.

    ``now`` is converted to the shop's time zone (``program.timezone``); a naive ``now`` is
    taken as shop-local already. Every date rule works on that local day.
    """
    today = program.local(now).date()
    if _not_partner(basket, program):
        assert program.coalition is not None
        effects = tuple(LineEffect(ln.sku, ln.qty, ln.qty * ln.unit_price)
                        for ln in basket.lines)
        total = sum(e.amount for e in effects)
        return Quote(lines=(), basket_total=total, effects=effects,
                     merchant_id=basket.merchant_id, qualifying_spend=total,
                     redeem_note=f"{basket.merchant_id} is not a partner of "
                                 f"{program.coalition.name or program.name}: no points")
    lines = basket.lines
    n = len(lines)
    every = list(range(n))
    tax = program.tax
    r_bp = tax.rate_bp
    amounts = [ln.qty * ln.unit_price for ln in lines]
    cat_of = [ln.category for ln in lines]
    sku_of = [ln.sku for ln in lines]
    line_tax: list[int] = []
    if not tax.prices_include_tax and tax.discounts == "after_tax" and r_bp:
        line_tax = [half_up(a * r_bp, 10000) for a in amounts]
        base = [a + t for a, t in zip(amounts, line_tax, strict=True)]
    else:
        base = list(amounts)
    base_total = sum(base)
    rem = list(base)
    fee_plans = frozenset(
        r.plan for r in program.active_rules
        if r.kind == "membership" and r.fee_sku and any(ln.sku == r.fee_sku for ln in lines))
    rules = [r for r in program.active_rules
             if _applies(r.when, r, member, basket, today, fee_plans)]
    elig_cache: dict[tuple[object, ...], list[int]] = {}

    def eligible(rule: Rule) -> list[int]:
        w = rule.when
        key = (w.categories, w.skus, w.exclude_categories, w.exclude_skus,
               rule.fee_sku if rule.kind == "membership" else "")
        got = elig_cache.get(key)
        if got is None:
            got = _eligible(rule.when, cat_of, sku_of, every)
            if rule.kind == "membership" and rule.fee_sku:
                got = [i for i in got if lines[i].sku != rule.fee_sku]
            elig_cache[key] = got
        return got

    qlines: list[QuoteLine] = []
    perks: list[Perk] = []
    claims: list[str] = []
    pname = program.name

    # -- 2. discounts ----------------------------------------------------------------
    cap_left = base_total * program.stacking.max_discount_bp // 10000
    stamp_units: dict[str, list[tuple[int, int]]] = {}  # card -> (line, units)
    stamp_every: dict[str, int] = {}
    for rule in rules:
        if rule.kind == "stamps":
            idx = _stamped(rule, lines, eligible(rule))
            units = [(i, lines[i].qty) for i in idx]
            if rule.stamp_per == "visit" and units:
                units = [(units[0][0], 1)]
            stamp_units[rule.card] = units
            stamp_every[rule.card] = rule.every
    consumed_cards: dict[str, list[tuple[int, int]]] = {}
    coupons_used: list[str] = []
    credits_used: list[str] = []
    credits_left: list[tuple[str, int]] = []

    groups: list[str] = list(program.stacking.order)
    by_group: dict[str, list[Rule]] = {}
    for rule in rules:
        if rule.kind in DISCOUNT_KINDS:
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
        best: list[_Applied] = []
        best_total = -1
        for cg in candidates:
            applied = _run_group(program, by_group[cg], member, lines, base, rem, today,
                                 eligible)
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
                text = f"{text} (capped at {_bp_text(program.stacking.max_discount_bp)})"
            cap_left -= total
            if len(a.idx) == n:
                rem = [r - x for r, x in zip(rem, a.parts, strict=True)]
            else:
                for i, x in zip(a.idx, a.parts, strict=True):
                    rem[i] -= x
            qlines.append(QuoteLine(a.rule.program, "discount", total, f"{text}: -{money(total)}",
                                    a.rule.id, label=text))
            if a.rule.kind == "stamps" and a.free_units:
                card = a.rule.card
                consumed_cards[card] = list(a.free_units.items())
            if a.coupon:
                coupons_used.append(a.coupon)
            given = total
            for credit, d in a.credits:  # a credit keeps what this sale did not use
                used = min(d, given)
                given -= used
                if used <= 0:
                    continue
                left = credit.amount - min(credit.amount, used)
                if left > 0:
                    credits_left.append((credit.credit_id, left))
                else:
                    credits_used.append(credit.credit_id)
            if a.rule.when.limit:
                claims.append(a.rule.id)

    # -- 3. redemption ----------------------------------------------------------------
    payable = sum(rem)
    redeem_val = [0] * n
    redeem_pts = [0] * n
    redeem_points = 0
    redeem_note = ""
    expired, expiring, expiring_on = expiry_status(member, today, program)
    if basket.redeem_points:
        spendable = member if not expired else replace(member, balance=member.balance - expired)
        decision = decide_redemption(spendable, payable, basket.redeem_points, program)
        redeem_note = decision.reason
        if decision.points:
            redeem_points = decision.points
            redeem_val = allocate(decision.value, rem)
            redeem_pts = allocate(decision.points, redeem_val)
            label = f"{decision.points} pts redeemed"
            qlines.append(QuoteLine(pname, "redeem", decision.value,
                                    f"{label}: -{money(decision.value)}", "redemption",
                                    label=label))
    paid = [rem[i] - redeem_val[i] for i in every]
    earn_base = rem if program.rate.earn_on_redeemed else paid
    qualifying = sum(paid)

    # -- 4. points ------------------------------------------------------------------
    if tax.prices_include_tax or tax.discounts == "after_tax":
        fnum, fden = (10000, 10000 + r_bp) if tax.earn_on == "net" else (1, 1)
    else:
        fnum, fden = (10000 + r_bp, 10000) if tax.earn_on == "gross" else (1, 1)
    pend: _Pending = []
    # earn components: points = floor(sum(weights) * factor / den) over lines idx
    exact: list[tuple[int, int, list[int], list[int]]] = []
    for rule in rules:
        if rule.kind != "earn":
            continue
        idx = eligible(rule)
        if not idx or (rule.when.min_spend
                       and sum(earn_base[i] for i in idx) < rule.when.min_spend):
            continue
        mult = dict(rule.multipliers)
        if mult and not mult.keys() & set(sku_of):  # only category multipliers apply
            ms = [mult.get(cat_of[i], 100) for i in idx]
        elif mult:
            ms = [mult.get(sku_of[i], mult.get(cat_of[i], 100)) for i in idx]
        else:
            ms = [100] * len(idx)
        if rule.points:
            w = [earn_base[i] * m for i, m in zip(idx, ms, strict=True)]
            factor, den = rule.points * fnum, rule.per * 100 * fden
            _earn_line(qlines, pend, rule, sum(w) * factor // den, idx, w, f"({rule.label})")
            exact.append((factor, den, idx, w))
        if rule.per_item:  # a free line (a bag, a free coffee) earns only if the rule says
            w = [lines[i].qty * m if lines[i].unit_price > 0 or rule.free_items else 0
                 for i, m in zip(idx, ms, strict=True)]
            factor, den = rule.per_item, 100
            _earn_line(qlines, pend, rule, sum(w) * factor // den, idx, w, f"({rule.label})")
            exact.append((factor, den, idx, w))
        if rule.per_visit and (rule.free_items or any(amounts[i] for i in idx)):
            w = paid if idx is every else [paid[i] for i in idx]
            _earn_line(qlines, pend, rule, rule.per_visit, idx, w, f"({rule.label})")
            if rule.when.limit:
                claims.append(rule.id)
    # multipliers: tier levels, paid membership, promotions (birthday x2, happy hour)
    mults: dict[str, list[tuple[int, str, Rule]]] = {}
    tiers_rule = program.tiers()
    for rule in rules:
        pct, text = 0, rule.label
        if rule.kind == "multiplier":
            pct = rule.percent
        elif rule.kind == "membership" and rule.percent > 100:
            pct, text = rule.percent, f"{rule.plan} {_pct_text(rule.percent)}"
        elif rule.kind == "tiers":
            lv = _level(rule, member.tier)
            if lv is not None and lv.earn_percent != 100:
                pct, text = lv.earn_percent, f"{lv.name} {_pct_text(lv.earn_percent)}"
        if pct > 100 and exact:
            mults.setdefault(rule.group, []).append((pct, text, rule))
    for g, cands in mults.items():
        chosen = cands
        if program.stacking.mode(g) == "best_of":
            chosen = [max(cands, key=lambda c: c[0])]
        for pct, text, rule in chosen:
            bonus = 0
            only = set(eligible(rule)) if rule.when.filters_lines else None
            for factor, den, idx, w in exact:
                if only is not None:  # a promotion on some products only
                    w = [x if i in only else 0 for i, x in zip(idx, w, strict=True)]
                b = sum(w) * factor * (pct - 100) // (den * 100)
                if b > 0:
                    pend.append((b, idx, w))
                bonus += b
            if bonus > 0:
                qlines.append(QuoteLine(rule.program, "points", bonus, f"{text}: +{bonus} pts",
                                        rule.id, label=text))
                if rule.when.limit:
                    claims.append(rule.id)

    before = {"lifetime": member.lifetime_spend, "period": member.period_spend}
    for rule in rules:
        if rule.kind == "bonus":
            idx = eligible(rule)
            w = paid if idx is every else [paid[i] for i in idx]
            paid_here = sum(w)
            if paid_here > 0 and paid_here >= rule.when.min_spend:  # never for a free basket
                _earn_line(qlines, pend, rule, rule.points, idx, w, "")
                if rule.when.limit:
                    claims.append(rule.id)
        elif rule.kind == "threshold":
            spent = before[rule.basis]
            crossed = (spent + qualifying) // rule.every - spent // rule.every
            if crossed <= 0:
                continue
            if rule.points:
                _earn_line(qlines, pend, rule, rule.points * crossed, every, paid, "")
            if rule.coupon:
                perks.append(Perk(rule.program, f"coupon:{rule.coupon}",
                                  f"{rule.label} x{crossed}" if crossed > 1 else rule.label,
                                  crossed, value=crossed * _coupon_value(rule, program)))
            if rule.perk:
                perks.append(Perk(rule.program, f"perk:{rule.id}", rule.perk, crossed,
                                  value=0 if rule.coupon else crossed * rule.value))
        elif rule.kind == "referral":
            if (member.referred_by and member.visits == 0 and rule.id not in member.claims
                    and qualifying > 0 and qualifying >= rule.when.min_spend):
                if rule.referee_points:
                    _earn_line(qlines, pend, rule, rule.referee_points, every, paid,
                               "(welcome, referred by a friend)")
                if rule.referrer_points:  # the till never shows another member's id
                    label = f"{rule.label} (to your referrer)"
                    qlines.append(QuoteLine(
                        rule.program, "points", rule.referrer_points,
                        f"{label}: +{rule.referrer_points} pts", rule.id, member.referred_by,
                        label=label))
                claims.append(rule.id)
        elif rule.kind == "membership":
            if rule.plan in fee_plans:
                until = today + timedelta(days=rule.valid_days - 1)
                if member.membership == rule.plan and member.membership_expires and \
                        member.membership_expires >= today:
                    until = member.membership_expires + timedelta(days=rule.valid_days)
                perks.append(Perk(rule.program, f"membership:{rule.plan}",
                                  f"{rule.plan} member until {until.isoformat()}", 1, until))
            perks.extend(Perk(rule.program, f"perk:{rule.id}", f"{rule.plan}: {p}")
                         for p in rule.perks)
        elif rule.kind == "instant_win":
            if qualifying >= rule.when.min_spend and qualifying > 0 and eligible(rule):
                expected = sum(half_up(p.value, p.one_in) for p in rule.prizes)
                perks.append(Perk(rule.program, f"game:{rule.id}", rule.label, value=expected))
        elif rule.kind == "perk" and eligible(rule):
            perks.append(Perk(rule.program, f"perk:{rule.id}", rule.perk))
            if rule.when.limit:
                claims.append(rule.id)

    if tiers_rule is not None and any(r is tiers_rule for r in rules):
        if tiers_rule.period_months:
            new = tier_for(tiers_rule, member.period_spend + qualifying,
                           member.period_visits + 1)
        else:
            new = tier_for(tiers_rule, member.lifetime_spend + qualifying, member.visits + 1)
        levels = [lv.name for lv in tiers_rule.levels]
        cur = levels.index(member.tier) if member.tier in levels else -1
        if new is not None and levels.index(new) > max(cur, 0):
            perks.append(Perk(pname, f"tier:{new}", f"Upgraded to {new}"))

    # -- 5. stamps, tax, effects -------------------------------------------------------
    pts = _spread_points(pend, n)
    stamps_by_line: dict[int, dict[str, int]] = {}
    stamps_after: list[tuple[str, int]] = []
    for card, units in stamp_units.items():
        held = member.stamps.get(card, 0)
        gained = sum(u for _, u in units)
        for i, u in units:
            per = stamps_by_line.setdefault(i, {})
            per[card] = per.get(card, 0) + u
        used = 0
        for i, u in consumed_cards.get(card, []):
            per = stamps_by_line.setdefault(i, {})
            per[card] = per.get(card, 0) - u * stamp_every[card]
            used += u * stamp_every[card]
        stamps_after.append((card, held + gained - used))
    line_stamps: list[tuple[tuple[str, int], ...]] = [()] * n
    for i, per in stamps_by_line.items():
        line_stamps[i] = tuple(sorted((c, v) for c, v in per.items() if v))

    tax_total = tax_added = 0
    tax_share = [0] * n
    if r_bp:
        if tax.prices_include_tax:
            tax_total = qualifying - half_up(qualifying * 10000, 10000 + r_bp)
        elif tax.discounts == "after_tax":
            tax_total = tax_added = sum(line_tax)
        else:
            tax_total = tax_added = half_up(qualifying * r_bp, 10000)
            tax_share = allocate(tax_added, paid)
    disc = [b - r for b, r in zip(base, rem, strict=True)]
    if tax_added and not line_tax:
        base = [a + b for a, b in zip(base, tax_share, strict=True)]
    effects = tuple(map(LineEffect._make, zip(
        sku_of, [ln.qty for ln in lines], base, disc, redeem_val, redeem_pts, pts,
        line_stamps, strict=True)))
    all_points = sum(ln.value for ln in qlines if ln.kind == "points")
    return Quote(
        lines=tuple(qlines),
        basket_total=sum(amounts),
        effects=effects,
        perks=tuple(perks),
        tax_total=tax_total,
        tax_added=tax_added,
        redeem_points=redeem_points,
        redeem_note=redeem_note,
        points_liability=program.rate.liability(all_points),
        stamps_after=tuple(sorted(stamps_after)),
        coupons_used=tuple(coupons_used),
        credits_used=tuple(credits_used),
        credits_left=tuple(credits_left),
        expired_points=expired,
        expiring_points=expiring,
        expiring_on=expiring_on,
        claims=tuple(dict.fromkeys(claims)),
        merchant_id=basket.merchant_id,
        qualifying_spend=qualifying,
    )


_Pending = list[tuple[int, list[int], list[int]]]


def _earn_line(qlines: list[QuoteLine], pend: _Pending, rule: Rule, points: int,
               idx: list[int], weights: list[int], note: str) -> None:
    """Add a points line; its split across basket lines is done once at the end."""
    if points <= 0:
        return
    pend.append((points, idx, weights))
    text = f"+{points} pts {note}".rstrip() if note else f"{rule.label}: +{points} pts"
    qlines.append(QuoteLine(rule.program, "points", points, text, rule.id, label=rule.label))


def _coupon_value(rule: Rule, program: Program) -> int:
    """What one coupon a threshold issues costs: the coupon rule's fixed amount, else the
    threshold's own ``value`` (a percent coupon's worth depends on the basket it meets)."""
    coupon = next((r for r in program.active_rules
                   if r.kind == "coupon" and r.code == rule.coupon), None)
    if coupon is not None and coupon.amount and not coupon.discount_bp:
        return coupon.amount
    return rule.value


def _spread_points(pend: _Pending, n: int) -> list[int]:
    """Per-line points: components sharing the same weights are split together, once."""
    merged: dict[tuple[int, int], tuple[int, list[int], list[int]]] = {}
    for points, idx, w in pend:
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


def tier_for(rule: Rule, spend: int, visits: int) -> str | None:
    """The highest level whose spend and visit marks are both reached."""
    got: str | None = None
    for lv in rule.levels:
        if spend >= lv.min_spend and visits >= lv.min_visits:
            got = lv.name
    return got


def _run_group(program: Program, rules: list[Rule], member: MemberView,
               lines: tuple[BasketLine, ...], base: list[int], rem: list[int], today: date,
               elig: Callable[[Rule], list[int]]) -> list[_Applied]:
    """The discounts one stacking group gives on the current amounts (not yet applied)."""
    single = len(rules) == 1
    work = rem if single else list(rem)  # read-only when there is nothing to chain
    compound = program.stacking.compound
    best_of = program.stacking.mode(rules[0].group) == "best_of"
    out: list[_Applied] = []
    for rule in rules:
        src = rem if best_of else (work if compound else base)
        a = _discount(rule, member, lines, src, today, elig(rule))
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
        top = max(out, key=lambda a: a.total)
        return [top]
    return out


def _discount(rule: Rule, member: MemberView, lines: tuple[BasketLine, ...], amt: list[int],
              today: date, idx: list[int]) -> _Applied | None:
    """One rule's discount on the amounts ``amt`` of lines ``idx``, or None."""
    if not idx:
        return None
    sub = amt if len(idx) == len(amt) else [amt[i] for i in idx]
    if rule.when.min_spend and \
            sum(lines[i].qty * lines[i].unit_price for i in idx) < rule.when.min_spend:
        return None
    kind = rule.kind
    if kind == "stamps":
        return _stamps(rule, member, lines, amt, _stamped(rule, lines, idx))
    if kind == "credit":
        credits = [c for c in member.credits if c.expires is None or c.expires >= today]
        credits = credits[: rule.max_per_sale]
        if not credits:
            return None
        total = 0
        left = sum(sub)
        gives: list[tuple[Credit, int]] = []
        for c in credits:
            d = min(left, c.amount + half_up(left * c.percent_bp, 10000))
            gives.append((c, d))
            total += d
            left -= d
        if total <= 0:
            return None
        reasons = ", ".join(c.reason for c in credits if c.reason)
        text = f"{rule.label} ({reasons})" if reasons else rule.label
        return _Applied(rule, idx, allocate(total, sub), text, credits=tuple(gives))
    bp = rule.discount_bp
    if kind == "progressive":
        spend = member.lifetime_spend if rule.basis == "lifetime" else member.period_spend
        bp = 0
        for start, step_bp in rule.scale:
            if spend >= start:
                bp = step_bp
    elif rule.by_tier:
        bp = dict(rule.by_tier).get(member.tier or "", 0)
    coupon = ""
    if kind == "coupon":
        if rule.bound == "member":
            if member.coupons.get(rule.code, 0) <= 0:
                return None
        elif member.coupon_uses.get(rule.code, 0) >= rule.uses:
            return None
        coupon = rule.code
    total = sum(sub)
    d = half_up(total * bp, 10000) + rule.amount
    d = min(d, total)
    if d <= 0:
        return None
    label = rule.label
    if kind == "progressive" and label == rule.id:
        label = f"{_bp_text(bp)} loyalty discount"
    elif kind == "membership" and label == rule.id:
        label = f"{rule.plan} {_bp_text(bp)} member discount"
    return _Applied(rule, idx, allocate(d, sub), label, coupon=coupon)


def _stamped(rule: Rule, lines: tuple[BasketLine, ...], idx: list[int]) -> list[int]:
    """The lines that earn stamps: a free (0.00) line only if the rule says so."""
    if rule.free_items or all(lines[i].unit_price for i in idx):
        return idx
    return [i for i in idx if lines[i].unit_price]


def _stamps(rule: Rule, member: MemberView, lines: tuple[BasketLine, ...], amt: list[int],
            idx: list[int]) -> _Applied | None:
    """Every Nth qualifying purchase free: the cheapest (or dearest) qualifying unit."""
    held = member.stamps.get(rule.card, 0)
    units = sum(lines[i].qty for i in idx) if rule.stamp_per == "item" else 1
    free = (held + units) // rule.every
    if free <= 0:
        return None
    sign = -1 if rule.free == "dearest" else 1
    order = sorted(idx, key=lambda i: (sign * lines[i].unit_price, i))
    free_units: dict[int, int] = {}
    left = free
    for i in order:
        if left <= 0:
            break
        take = min(left, lines[i].qty)
        free_units[i] = take
        left -= take
    idx = list(free_units)
    parts = [amt[i] * free_units[i] // lines[i].qty for i in idx]
    return _Applied(rule, idx, parts, rule.label, free_units=free_units)
