"""An offers run and the cashier's lines on a synthetic chain, beside the segments query.

Generates a chain (``pos-loyalty sim chain``'s generator) into a fresh SQLite central,
publishes ``examples/offers-program.toml``, then times, in the same process:

- baseline: every member's stage and segments (``member_insight``, which a run reads once);
- ``run_offers --dry-run`` and a real run over four offers (lapsed regulars, regulars,
  bought girls' clothing in size 10 in 90 days, birthday this month);
- ``admin offers lines``: every member's line from a year of sales.

    python bench/bench_offers_run.py [--members 20000] [--stores 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

from pos_loyalty.insight.chain import ChainSpec
from pos_loyalty.migrations import upgrade_central
from pos_loyalty.offers.file import parse_offers
from pos_loyalty.server.central import CentralStore
from pos_loyalty.server.offers.lines import member_visits, refresh_lines
from pos_loyalty.server.offers.run import run_offers
from pos_loyalty.server.sales.bulk import write_chain
from pos_loyalty.server.sales.insight import member_insight

ROOT = Path(__file__).resolve().parents[1]
OFFERS = '''
[[offer]]
id = "winback"
coupon = "WELCOME-BACK-5"
max_members = 1000000
[offer.target]
segment = "lapsed regular"

[[offer]]
id = "regulars"
coupon = "BIRTHDAY-TREAT"
max_members = 1000000
[offer.target]
stage = "regular"

[[offer]]
id = "girls-10"
coupon = "GIRLS10-15"
max_members = 1000000
[offer.target]
bought = { category = "kids-clothing", sku = "GIRLS-*-10", days = 90 }

[[offer]]
id = "birthday"
coupon = "BIRTHDAY-TREAT"
max_members = 1000000
[offer.target]
birthday = "this month"
'''


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--members", type=int, default=20_000)
    ap.add_argument("--stores", type=int, default=5)
    args = ap.parse_args()
    end = date(2026, 11, 30)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'central.db'}"
        upgrade_central(url)
        store = CentralStore(url, clock=lambda: datetime(2026, 11, 30, 18, 0))
        t = time.perf_counter()
        write_chain(store, ChainSpec(args.stores, args.members, 365, end=end))
        store.publish_program((ROOT / "examples" / "offers-program.toml").read_text())
        print(f"chain of {args.members:,} members generated in {time.perf_counter() - t:.1f} s")
        offers = parse_offers(OFFERS, path="bench-offers.toml")

        t = time.perf_counter()
        insight = sum(1 for _ in member_insight(store, today=end))
        base = time.perf_counter() - t
        t = time.perf_counter()
        dry = run_offers(store, offers, dry_run=True, actor="bench")
        dry_s = time.perf_counter() - t
        t = time.perf_counter()
        real = run_offers(store, offers, dry_run=False, actor="bench")
        real_s = time.perf_counter() - t
        t = time.perf_counter()
        written = refresh_lines(store, offers.cashier, member_visits(store, end, 365), end)
        lines_s = time.perf_counter() - t
        store.close()
    print(f"baseline member_insight ({insight:,} members with sales): {base:.2f} s")
    print(f"offers run, dry: {dry_s:.2f} s ({dry_s / base:.2f}x baseline); "
          + ", ".join(f"{o.offer_id} {len(o.members)}" for o in dry.outcomes))
    print(f"offers run, issuing {sum(o.issued for o in real.outcomes):,} coupons: "
          f"{real_s:.2f} s ({real_s / base:.2f}x baseline)")
    print(f"cashier's lines for every member ({written:,} rows written): {lines_s:.2f} s "
          f"({lines_s / base:.2f}x baseline)")


if __name__ == "__main__":
    main()
