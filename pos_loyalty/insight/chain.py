"""A synthetic chain: members with habits, their sales, refunds, points, NPS answers and tag
taps, generated from a seed. Pure (no I/O, no clock): the same arguments give the same rows.

Habits (each member draws one): ``weekly`` (a visit every ~7 days), ``monthly`` (~30),
``occasional`` (~75), ``one_off`` (a single visit) and ``lapsing`` (weekly, then gone for good
part-way through). Visits are denser in December and thinner in January and February; a
member shops mostly at a home store and mostly in two favourite categories. 2% of sales are
partly refunded a few days later; members with 500 points redeem them on 1 visit in 8; one
anonymous sale for every two member sales; a visit answer (0-10) on 1 member visit in 25,
loyal habits scoring higher; tagged products get phone taps (a first genuine one, then some
replays) and NPS answers.

Rows come out as plain tuples in the column order of :data:`COLUMNS`, in batches, so a writer
can stream a year of a 100,000-member chain into the database without holding it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

CATEGORIES: dict[str, tuple[tuple[str, int], ...]] = {
    "dairy": (("MILK-1L", 590), ("YOGURT", 450), ("CHEESE", 1890), ("OAT-MILK", 790)),
    "bakery": (("BREAD", 990), ("CROISSANT", 650), ("BAGELS", 1190)),
    "produce": (("APPLES", 1290), ("BANANAS", 890), ("TOMATOES", 1090)),
    "coffee": (("BEANS-500", 4990), ("ESPRESSO", 1290), ("FILTERS", 990)),
    "kids-clothing": (("GIRLS-TEE-10", 3990), ("BOYS-JEANS-8", 8990), ("SOCKS-3", 2490)),
    "home": (("CANDLE", 2990), ("MUG", 3490), ("TOWEL", 5990)),
    "beauty": (("LIPSTICK", 7990), ("SERUM", 12990), ("HANDCREAM", 3990)),
    "pets": (("DOG-FOOD", 8990), ("CAT-LITTER", 4590), ("TREATS", 1990)),
}
TAGGED = ("SERUM", "BEANS-500", "TOWEL", "LIPSTICK", "BOYS-JEANS-8")
"""Products whose packaging carries an NFC tag."""
HABITS: tuple[tuple[str, float, float], ...] = (
    # name, share of members, mean days between visits
    ("weekly", 0.15, 7.0), ("monthly", 0.30, 30.0), ("occasional", 0.25, 75.0),
    ("one_off", 0.15, 0.0), ("lapsing", 0.15, 7.0),
)
COMMENTS = ("", "", "", "friendly staff", "long queue at the till", "great coffee beans",
            "could not find the size I wanted", "love the points", "prices went up",
            "quick and easy")
SEASON = {1: 0.85, 2: 0.85, 3: 1.0, 4: 1.0, 5: 1.0, 6: 1.05, 7: 1.05, 8: 1.0, 9: 1.0,
          10: 1.0, 11: 1.1, 12: 1.3}

COLUMNS: dict[str, tuple[str, ...]] = {
    "stores": ("store_id", "name", "created_at"),
    "members": ("member_id", "display_name", "tier", "birthday", "status", "change_xid",
                "name_key", "email", "anonymous", "consent_at", "merged_into"),
    "balances": ("member_id", "balance", "change_xid"),
    "sales": ("sale_id", "terminal_id", "store_id", "kind", "pos_id", "txn_id", "refund_id",
              "member_id", "terminal_time", "received_at", "flags", "basket_total",
              "discount_total", "paid_total", "points_earned", "points_redeemed", "points",
              "coupons", "body_hash"),
    "sale_lines": ("sale_id", "line_no", "kind", "store_id", "member_id", "terminal_time",
                   "sku", "category", "qty", "amount", "discount", "points"),
    "ledger_events": ("member_id", "event_id", "terminal_id", "store_id", "terminal_seq",
                      "kind", "points", "txn_ref", "terminal_time", "received_at", "offline",
                      "flags", "status", "reason", "reviewed_at", "review_note"),
    "visit_answers": ("event_id", "member_id", "store_id", "score", "comment", "answered_at"),
    "phone_taps": ("tap_id", "token_hash", "sku", "uid", "result", "counter", "store_id",
                   "at", "day"),
    "phone_nps": ("uid", "sku", "score", "comment", "tap_id", "answered_at"),
}
"""The tables written, in a safe order, and each table's columns in row order."""

Rows = dict[str, list[tuple[Any, ...]]]

PROGRAM = """\
# The generated chain's program: what its sales earned and redeemed.
[program]
name = "Chain points"

[[rule]]
id = "base"
kind = "earn"
label = "1 pt per 1.00"
points = 1
per = 100

[redemption]
points = 100
value = 100
min_points = 100
max_percent = 100

[expiry]
mode = "rolling"
months = 12
"""


@dataclass(frozen=True)
class ChainSpec:
    stores: int
    members: int
    days: int
    seed: int = 1
    end: date = date(2026, 11, 30)  # the last day of sales (a fixed day: deterministic)
    change_xid: int = 1

    def __post_init__(self) -> None:
        if self.stores < 1 or self.members < 0 or self.days < 1:
            raise ValueError("a chain needs at least one store and one day")


@dataclass
class _Counters:
    sale: int = 0
    seq: dict[str, int] = field(default_factory=dict)
    event: int = 0
    tap: int = 0


def _terminal(store: str) -> str:
    return f"T-{store}"


def generate(spec: ChainSpec, batch_sales: int = 50_000) -> Iterator[Rows]:
    """The chain's rows, in batches (stores and members first); each batch is a dict of
    table -> rows."""
    rng = random.Random(spec.seed)
    stores = [f"S{i + 1:02d}" for i in range(spec.stores)]
    start = spec.end - timedelta(days=spec.days - 1)
    opened = datetime.combine(start, datetime.min.time())
    yield {"stores": [(s, f"Store {i + 1}", opened) for i, s in enumerate(stores)]}
    cats = list(CATEGORIES)
    counters = _Counters()
    out: Rows = {name: [] for name in COLUMNS if name != "stores"}
    for n in range(spec.members):
        member = f"M{n + 1:06d}"
        habit = _pick_habit(rng)
        home = rng.choice(stores)
        favourites = rng.sample(cats, 2)
        tier = "gold" if habit == "weekly" and rng.random() < 0.5 else None
        born = date(rng.randint(1950, 2005), rng.randint(1, 12), rng.randint(1, 28))
        out["members"].append((member, f"Member {n + 1}", tier, born, "active",
                               spec.change_xid, f"member {n + 1}", "", False, opened, None))
        balance = _member_sales(rng, spec, counters, out, member, habit, home, stores,
                                favourites, start)
        out["balances"].append((member, balance, spec.change_xid))
        if len(out["sales"]) >= batch_sales:
            yield out
            out = {name: [] for name in COLUMNS if name != "stores"}
    for _ in range(max(spec.days, counters.sale // 2)):  # one for every two member sales
        _anonymous_sale(rng, spec, counters, out, stores, start)
        if len(out["sales"]) >= batch_sales:
            yield out
            out = {name: [] for name in COLUMNS if name != "stores"}
    yield out


def _pick_habit(rng: random.Random) -> str:
    x = rng.random()
    for name, share, _ in HABITS:
        if x < share:
            return name
        x -= share
    return HABITS[-1][0]


def _basket(rng: random.Random, favourites: list[str]) -> list[tuple[str, str, int, int]]:
    lines = []
    for _ in range(rng.choice((1, 1, 2, 2, 3, 4))):
        cat = rng.choice(favourites) if rng.random() < 0.75 else rng.choice(list(CATEGORIES))
        sku, price = rng.choice(CATEGORIES[cat])
        qty = rng.choice((1, 1, 1, 2, 3))
        lines.append((sku, cat, qty, qty * price))
    return lines


def _member_sales(rng: random.Random, spec: ChainSpec, c: _Counters, out: Rows, member: str,
                  habit: str, home: str, stores: list[str], favourites: list[str],
                  start: date) -> int:
    mean = dict((h, gap) for h, _, gap in HABITS)[habit]
    day = start + timedelta(days=int(rng.random() * spec.days * (0.9 if habit != "one_off"
                                                                  else 1.0)))
    stop = spec.end
    if habit == "lapsing":
        stop = min(spec.end, day + timedelta(days=rng.randint(60, 200)))
    balance = 0
    while day <= stop:
        store = home if rng.random() < 0.85 else rng.choice(stores)
        when = datetime.combine(day, datetime.min.time()) + timedelta(
            minutes=rng.randint(8 * 60, 20 * 60))
        redeem = 500 if balance >= 500 and rng.random() < 0.125 else 0
        balance += _sale(rng, c, out, member, store, when, _basket(rng, favourites), redeem)
        if habit == "one_off":
            break
        gap = rng.expovariate(1.0 / mean) / SEASON[day.month]
        day += timedelta(days=max(1, round(gap)))
    return balance


def _sale(rng: random.Random, c: _Counters, out: Rows, member: str | None, store: str,
          when: datetime, lines: list[tuple[str, str, int, int]], redeem: int) -> int:
    """One sale (and maybe its refund, answer and taps); the member's balance change."""
    c.sale += 1
    sale_id = f"sim-{c.sale:012d}"
    term = _terminal(store)
    txn = f"X{c.sale:09d}"
    total = sum(a for _, _, _, a in lines)
    discount = min(redeem, total)
    paid = total - discount
    earned = paid // 100 if member else 0
    received = when + timedelta(seconds=5)
    out["sales"].append((sale_id, term, store, "sale", "POS-1", txn, "", member, when,
                         received, "", total, discount, paid, earned,
                         redeem if member else 0, earned - (redeem if member else 0), "",
                         "generated"))
    left = discount
    for i, (sku, cat, qty, amount) in enumerate(lines):
        off = min(left, amount)
        left -= off
        out["sale_lines"].append((sale_id, i, "sale", store, member, when, sku, cat, qty,
                                  amount, off, (amount - off) // 100 if member else 0))
    change = 0
    if member:
        if earned:
            change += _event(c, out, member, store, "earn", earned, f"POS-1/{txn}", when)
        if redeem:
            change += _event(c, out, member, store, "redeem", -redeem, f"POS-1/{txn}", when)
        if rng.random() < 0.04:
            score = min(10, max(0, round(rng.gauss(8.2 if earned > 30 else 7.0, 2.0))))
            out["visit_answers"].append((f"va-{c.sale:012d}", member, store, score,
                                         rng.choice(COMMENTS), when + timedelta(hours=3)))
    if rng.random() < 0.02:
        sku, cat, qty, amount = lines[0]
        back = when + timedelta(days=rng.randint(1, 10))
        rid = f"sim-{c.sale:012d}-r"
        pts = amount // 100 if member else 0
        out["sales"].append((rid, term, store, "refund", "POS-1", txn, "R1", member, back,
                             back, "", -amount, 0, -amount, -pts, 0, -pts, "", "generated"))
        out["sale_lines"].append((rid, 0, "refund", store, member, back, sku, cat, -qty,
                                  -amount, 0, -pts))
        if member and pts:
            change += _event(c, out, member, store, "reversal", -pts,
                             f"POS-1/{txn}/refund/R1", back)
    for sku, _, _, _ in lines:
        if sku in TAGGED and rng.random() < 0.3:
            _taps(rng, c, out, sku, store, when)
    return change


def _event(c: _Counters, out: Rows, member: str, store: str, kind: str, points: int,
           ref: str, when: datetime) -> int:
    term = _terminal(store)
    c.event += 1
    seq = c.seq.get(term, 0) + 1
    c.seq[term] = seq
    out["ledger_events"].append((member, f"sim-ev-{c.event:012d}", term, store, seq, kind,
                                 points, ref, when, when + timedelta(seconds=5), False, "",
                                 "applied", "", None, ""))
    return points


def _taps(rng: random.Random, c: _Counters, out: Rows, sku: str, store: str,
          when: datetime) -> None:
    c.tap += 1
    uid = f"04{c.tap:012X}"
    at = when + timedelta(hours=rng.randint(2, 24 * 14))
    for k in range(rng.choice((1, 1, 1, 2, 3))):
        t = at + timedelta(days=k * rng.randint(1, 20))
        tap_id = f"tap-{c.tap:010d}-{k}"
        out["phone_taps"].append((tap_id, None, sku, uid, "genuine" if k == 0 else "replayed",
                                  k + 1, store, t, t.date()))
        if k == 0 and rng.random() < 0.35:
            score = min(10, max(0, round(rng.gauss(7.8, 2.2))))
            out["phone_nps"].append((uid, sku, score, rng.choice(COMMENTS), tap_id,
                                     t + timedelta(minutes=2)))


def _anonymous_sale(rng: random.Random, spec: ChainSpec, c: _Counters, out: Rows,
                    stores: list[str], start: date) -> None:
    day = start + timedelta(days=rng.randrange(spec.days))
    when = datetime.combine(day, datetime.min.time()) + timedelta(
        minutes=rng.randint(8 * 60, 20 * 60))
    _sale(rng, c, out, None, rng.choice(stores), when,
          _basket(rng, rng.sample(list(CATEGORIES), 2)), 0)
