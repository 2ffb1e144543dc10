"""P3: local card lookup with 1M members, against a raw sqlite3 primary-key lookup.

Prints p50/p99 of LocalStore.find_by_card and of a bare sqlite3 SELECT by primary key on
the same file, measured in the same run, and their ratio (target: p99 < 0.2 ms and within
4x of the raw lookup).

    python bench/bench_lookup.py [--members 1000000] [--lookups 20000]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from seed import seed_members

from pos_loyalty.store import LocalStore


def percentiles(samples: list[float]) -> tuple[float, float]:
    qs = statistics.quantiles(samples, n=100)
    return qs[49], qs[98]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--members", type=int, default=1_000_000)
    ap.add_argument("--lookups", type=int, default=20_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        store = LocalStore(f"sqlite:///{path}")
        t0 = time.perf_counter()
        seed_members(store, args.members)
        print(f"seeded {args.members:,} members in {time.perf_counter() - t0:.1f} s")
        rng = random.Random(7)
        keys = [f"C-{rng.randrange(args.members):07d}" for _ in range(args.lookups)]

        ours: list[float] = []
        for key in keys:
            t = time.perf_counter()
            rec = store.find_by_card(key)
            ours.append((time.perf_counter() - t) * 1000)
            assert rec is not None

        raw_conn = sqlite3.connect(path)
        raw: list[float] = []
        for key in keys:
            t = time.perf_counter()
            row = raw_conn.execute(
                "SELECT m.member_id, m.display_name, m.tier, m.balance, m.lifetime_spend, "
                "m.visits, c.card_id, c.status FROM cards c JOIN members m "
                "ON m.member_id = c.member_id WHERE c.card_id = ?", (key,)).fetchone()
            raw.append((time.perf_counter() - t) * 1000)
            assert row is not None
        raw_conn.close()
        store.close()

    o50, o99 = percentiles(ours)
    r50, r99 = percentiles(raw)
    print(f"LocalStore.find_by_card  p50 {o50:.4f} ms  p99 {o99:.4f} ms")
    print(f"raw sqlite3 pk lookup    p50 {r50:.4f} ms  p99 {r99:.4f} ms")
    print(f"ratio p99 ours/raw       {o99 / r99:.2f}x  (target <= 4x, p99 < 0.2 ms)")


if __name__ == "__main__":
    main()
