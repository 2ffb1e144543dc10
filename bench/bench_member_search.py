"""P8: console member search over 1M members, through ``search_members`` (the query the
console and ``admin member search`` call), beside a primary-key lookup on the same database
measured in the same run (raw sqlite3 on SQLite; ``--db`` for PostgreSQL).

Members M-0000000.. named from a list of first and last names, each with a card
C-0000000..; queries are name prefixes (2-6 letters, any case), member id prefixes and card
ids, drawn at random. Target: p99 < 100 ms.

    python bench/bench_member_search.py [--members 1000000] [--queries 2000] [--db URL]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert, text

from pos_loyalty.migrations import upgrade_central
from pos_loyalty.server.central import CentralStore
from pos_loyalty.server.console.pages.members import SEARCH_LIMIT
from pos_loyalty.store.central_models import Balance, Card, Member

FIRST = ["Ada", "Ben", "Chen", "Dana", "Eli", "Fatma", "Gil", "Hana", "Ivan", "Jo", "Kofi",
         "Lea", "Moshe", "Nora", "Omar", "Priya", "Quinn", "Rivka", "Sami", "Tal"]
LAST = ["Cohen", "Levi", "Garcia", "Smith", "Nguyen", "Mizrahi", "Khan", "Rossi", "Ivanova",
        "Okafor", "Peretz", "Tanaka", "Silva", "Weiss", "Haddad", "Berg"]


def name(i: int) -> str:
    return f"{FIRST[i % len(FIRST)]} {LAST[(i // len(FIRST)) % len(LAST)]} {i % 9973}"


def seed(store: CentralStore, n: int, batch: int = 50_000) -> None:
    with store.engine.begin() as conn:
        for start in range(0, n, batch):
            ids = range(start, min(n, start + batch))
            conn.execute(insert(Member), [
                {"member_id": f"M-{i:07d}", "display_name": name(i),
                 "name_key": name(i).lower(), "status": "active", "change_xid": 1,
                 "email": "", "anonymous": False} for i in ids])
            conn.execute(insert(Balance), [
                {"member_id": f"M-{i:07d}", "balance": i % 500, "change_xid": 1} for i in ids])
            conn.execute(insert(Card), [
                {"card_id": f"C-{i:07d}", "member_id": f"M-{i:07d}", "status": "active",
                 "change_xid": 1} for i in ids])


def pct(samples: list[float]) -> tuple[float, float]:
    qs = statistics.quantiles(samples, n=100)
    return qs[49], qs[98]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--members", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--db", default=None, help="central database URL (default: a temp SQLite)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'central.db'}"
        upgrade_central(url)
        store = CentralStore(url)
        t0 = time.perf_counter()
        seed(store, args.members)
        print(f"seeded {args.members:,} members with cards in {time.perf_counter() - t0:.1f} s")
        rng = random.Random(13)
        queries: list[tuple[str, str]] = []
        for _ in range(args.queries):
            kind = rng.choice(("name", "name", "id", "card"))
            i = rng.randrange(args.members)
            if kind == "name":
                start = name(i)[: rng.randint(2, 6)]
                queries.append((kind, rng.choice((start, start.lower(), start.upper()))))
            elif kind == "id":
                queries.append((kind, f"M-{i:07d}"[: rng.randint(5, 9)]))
            else:
                queries.append((kind, f"C-{i:07d}"))
        per_kind: dict[str, list[float]] = {}
        every: list[float] = []
        for kind, q in queries:
            t = time.perf_counter()
            rows = store.search_members(q, limit=SEARCH_LIMIT)
            ms = (time.perf_counter() - t) * 1000
            assert rows, q
            per_kind.setdefault(kind, []).append(ms)
            every.append(ms)
        base: list[float] = []
        if url.startswith("sqlite:///"):
            raw = sqlite3.connect(url.removeprefix("sqlite:///"))
            for _ in queries:
                key = f"M-{rng.randrange(args.members):07d}"
                t = time.perf_counter()
                raw.execute("SELECT member_id, display_name FROM members WHERE member_id = ?",
                            (key,)).fetchone()
                base.append((time.perf_counter() - t) * 1000)
            raw.close()
        else:  # the same database through the same engine: one primary-key lookup
            with store.engine.connect() as conn:
                for _ in queries:
                    key = f"M-{rng.randrange(args.members):07d}"
                    t = time.perf_counter()
                    conn.execute(text("SELECT member_id, display_name FROM members "
                                      "WHERE member_id = :k"), {"k": key}).first()
                    base.append((time.perf_counter() - t) * 1000)
        store.close()
        p50, p99 = pct(every)
        print(f"search_members (limit {SEARCH_LIMIT}, as the console's Members page asks) over "
              f"{args.members:,} members, {len(every)} queries: "
              f"p50 {p50:.2f} ms, p99 {p99:.2f} ms (target p99 < 100 ms)")
        for kind, samples in sorted(per_kind.items()):
            k50, k99 = pct(samples)
            print(f"  {kind:<5} ({len(samples)}): p50 {k50:.2f} ms, p99 {k99:.2f} ms")
        if base:
            b50, b99 = pct(base)
            print(f"baseline primary-key lookup on the same database: p50 {b50:.3f} ms, "
                  f"p99 {b99:.3f} ms; search p99 / baseline p99 = {p99 / b99:.0f}x")


if __name__ == "__main__":
    main()
