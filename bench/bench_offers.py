"""What personal offers and the cashier's line add at the till, beside what was there.

On a store of N members (every member with a cashier's line, every tenth with a live offer):

- tap: ``find_by_card`` with the cashier's line (joined into the tap's one lookup) and the
  line made from it, against a bare sqlite3 lookup of member and card alone (the lookup
  before the line), measured in the same run;
- quote: ``quote_view`` (member state plus live offers merged) against
  ``LocalStore.member_view`` alone, measured in the same run.

    python bench/bench_offers.py [--members 200000] [--samples 20000]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from seed import LOOKUP_SQL, pct, seed_members

from pos_loyalty.store import LocalStore
from pos_loyalty.terminal.hints import cashier_line
from pos_loyalty.terminal.offers import quote_view


def timed(keys: list[str], fn: Callable[[str], object]) -> list[float]:
    out = []
    for key in keys:
        t = time.perf_counter()
        fn(key)
        out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--members", type=int, default=200_000)
    ap.add_argument("--samples", type=int, default=20_000)
    args = ap.parse_args()
    n = args.members
    with tempfile.TemporaryDirectory() as tmp:
        store = LocalStore(f"sqlite:///{Path(tmp) / 'bench.db'}")
        seed_members(store, n)
        ends = (datetime.now(UTC) + timedelta(days=30)).replace(tzinfo=None)
        now = datetime(2026, 1, 1)
        store.apply_pull("cashier_lines", ("member_id", "line", "birthday"),
                         [[f"M-{i:07d}", "usually buys oat milk", True] for i in range(n)],
                         "1:a", now)
        store.apply_pull("offers", ("issue_id", "member_id", "code", "expires_at", "status"),
                         [[f"O-{i:07d}", f"M-{i:07d}", "WINBACK", ends.isoformat(), "live"]
                          for i in range(0, n, 10)], "1:b", now)
        rng = random.Random(7)
        picks = [rng.randrange(n) for _ in range(args.samples)]
        cards = [f"C-{i:07d}" for i in picks]
        members = [f"M-{i:07d}" for i in picks]
        today = now.date()
        raw = sqlite3.connect(Path(tmp) / "bench.db")
        lookup = timed(cards, lambda c: raw.execute(LOOKUP_SQL, (c,)).fetchone())
        raw.close()

        def with_line(card: str) -> object:
            record = store.find_by_card(card)
            assert record is not None
            return cashier_line(record.line, today)

        line = timed(cards, with_line)
        plain = timed(members, store.member_view)
        clock = datetime.now(UTC).replace(tzinfo=None)

        def with_offers(member_id: str) -> object:
            view = store.member_view(member_id)
            assert view is not None
            return quote_view(store, view, clock)

        merged = timed(members, with_offers)
        store.close()
    for name, s, base in (("tap: lookup + line", line, lookup),
                          ("quote: member + offers", merged, plain)):
        (p50, p99), (b50, b99) = pct(s), pct(base)
        print(f"{name:24} p50 {p50:.3f} ms  p99 {p99:.3f} ms   baseline p50 {b50:.3f} ms "
              f"p99 {b99:.3f} ms   ratio p50 {p50 / b50:.2f}x")


if __name__ == "__main__":
    main()
