"""The owner's offers file (``examples/offers.toml``) -> values, errors naming file, line, key.

Read with the program files' own position-aware tables (:mod:`pos_loyalty.rules.toml`), so a
mistake reads like one in a program: ``offers.toml:12: key 'offer[1].coupon': ...``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pos_loyalty.configfile import loads_toml
from pos_loyalty.errors import ConfigError
from pos_loyalty.insight.segments import SEGMENTS, STAGES
from pos_loyalty.offers.targets import Bought, Target, norm
from pos_loyalty.rules.kinds import Coupon
from pos_loyalty.rules.program import Program
from pos_loyalty.rules.toml import Ctx, Table, hint

MAX_VALID_DAYS = 366
ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class Offer:
    """One offer: who (``target``), what (coupon ``coupon`` for ``valid_days``), how often
    (at most ``cap_times`` per member in ``cap_days``) and the most members one run may
    give it to (``max_members``: more than that refuses the offer, no mass blast)."""

    id: str
    coupon: str
    target: Target
    valid_days: int = 30
    cap_times: int = 1
    cap_days: int = 90
    max_members: int = 1000
    note: str = ""


@dataclass(frozen=True)
class CashierRules:
    """Which cashier's lines the owner wants (each can be switched off) and their knobs."""

    birthday: bool = True
    welcome_back: bool = True
    welcome_back_after_days: int = 60
    usually_buys: bool = True
    usually_buys_visits: int = 3
    history_days: int = 365


@dataclass(frozen=True)
class OffersFile:
    offers: tuple[Offer, ...]
    cashier: CashierRules
    path: str
    ctx: Ctx = field(compare=False, repr=False)

    def check_coupons(self, programs: Iterable[tuple[str, Program]]) -> None:
        """Every offer's coupon must be a ``bound = "member"`` coupon rule of every live
        program (``(label, program)`` pairs): anywhere else the till would not apply it."""
        progs = list(programs)
        if not progs and self.offers:
            raise self.ctx.error(("offer", 0, "coupon"), "no program is published at "
                                 "central: publish one with the coupon rule first")
        for i, offer in enumerate(self.offers):
            for label, program in progs:
                codes = {r.code for r in program.active_rules
                         if isinstance(r, Coupon) and r.bound == "member"}
                if offer.coupon not in codes:
                    raise self.ctx.error(
                        ("offer", i, "coupon"),
                        f"coupon {offer.coupon!r} is not a member-bound coupon rule "
                        f"(kind = \"coupon\", bound = \"member\") of {label}"
                        f"{hint(offer.coupon, codes)}")


def load_offers(path: str | Path) -> OffersFile:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", path=str(p)) from exc
    return parse_offers(text, path=str(p))


def parse_offers(text: str, *, path: str = "<offers>") -> OffersFile:
    data = loads_toml(text, path=path)
    ctx = Ctx(path, text)
    root = Table(ctx, data, ())
    cashier = _cashier(root.table("cashier"))
    offers: list[Offer] = []
    seen: dict[str, int] = {}
    for i, t in enumerate(root.tables("offer")):
        offer = _offer(t)
        if offer.id in seen:
            raise t.error("id", f"duplicate offer id {offer.id!r} (first used by "
                                f"offer[{seen[offer.id]}])")
        seen[offer.id] = i
        offers.append(offer)
    root.done()
    return OffersFile(tuple(offers), cashier, path, ctx)


def _cashier(t: Table | None) -> CashierRules:
    if t is None:
        return CashierRules()
    rules = CashierRules(
        birthday=t.flag("birthday", True), welcome_back=t.flag("welcome_back", True),
        welcome_back_after_days=t.integer("welcome_back_after_days", 60, minimum=7,
                                          maximum=3650),
        usually_buys=t.flag("usually_buys", True),
        usually_buys_visits=t.integer("usually_buys_visits", 3, minimum=2, maximum=100),
        history_days=t.integer("history_days", 365, minimum=30, maximum=3650))
    t.done()
    return rules


def _offer(t: Table) -> Offer:
    oid = t.string("id", "")
    t.need(bool(ID.fullmatch(oid)), "id", "an offer needs an id: letters, digits, '.', "
           "'_' or '-', at most 64")
    coupon = t.string("coupon", "")
    t.need(bool(coupon) and len(coupon) <= 64, "coupon",
           "the code of the coupon rule it issues (at most 64 characters)")
    valid = t.integer("valid_days", 30, minimum=1, maximum=MAX_VALID_DAYS)
    cap = t.table("cap")
    times, days = 1, 90
    if cap is not None:
        times = cap.integer("times", 1, minimum=1, maximum=100)
        days = cap.integer("days", 90, minimum=1, maximum=3650)
        cap.done()
    t.need(t.has("target"), "target", "an offer needs a target (who it is for)")
    target_t = t.table("target")
    assert target_t is not None
    target = _target(target_t)
    offer = Offer(oid, coupon, target, valid, times, days,
                  t.integer("max_members", 1000, minimum=1, maximum=1_000_000),
                  t.string("note", ""))
    t.done()
    return offer


SEGMENT_NAMES = (*(name for name, _cond in SEGMENTS), "lapsed_regular")
"""The RFM segments of the insight reports, and "lapsed regular"."""
STAGE_NAMES = tuple(STAGES)


def _names(t: Table, one: str, many: str, known: tuple[str, ...]) -> tuple[str, ...]:
    """The names given as ``one = "x"`` and ``many = [...]``; an unknown one is an error
    at the key that holds it."""
    given = ((many, t.strings(many)), (one, (t.string(one, ""),) if t.has(one) else ()))
    for key, names in given:
        for name in names:
            if norm(name) not in known:
                raise t.error(key, f"unknown {one} {name!r}{hint(norm(name), known)}; "
                                   f"one of {', '.join(known)}")
    return given[0][1] + given[1][1]


def _target(t: Table) -> Target:
    segments = _names(t, "segment", "segments", SEGMENT_NAMES)
    stages = _names(t, "stage", "stages", STAGE_NAMES)
    birthday = t.string("birthday", "")
    t.need(birthday in ("", "this month"), "birthday", "must be \"this month\"")
    bought = None
    b = t.table("bought")
    if b is not None:
        bought = Bought(b.string("category", ""), b.string("sku", ""),
                        b.integer("days", 90, minimum=1, maximum=3650))
        b.need(bool(bought.category or bought.sku), "category",
               "say what was bought: a category, a SKU pattern, or both")
        b.done()
    target = Target(segments, stages, bought, birthday == "this month")
    t.need(not target.empty, "segment", "a target needs at least one condition: segment, "
           "stage, bought or birthday")
    t.done()
    return target
