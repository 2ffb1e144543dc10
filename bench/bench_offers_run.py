"""An offers run and the cashier's lines on a synthetic chain, beside the segments query.

Generates a chain (``pos-loyalty sim chain``'s generator) into a fresh SQLite central,
publishes ``examples/offers-program.toml``, then times, in the same process:

- baseline: every member's stage and segments (``member_insight``, which a run reads once);
- ``run_offers --dry-run`` and a real run over four offers (lapsed regulars, regulars,
  bought girls' clothing in size 10 in 90 days, birthday this month);
- ``admin offers lines``: every member's line from a year of sales;
- ``report offers``: the figures once every issued coupon whose member has a sale is marked
  used by that sale (the paid column looks each use's sale up).

    python bench/bench_offers_run.py [--members 20000] [--stores 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import Connection, select, update

from pos_loyalty.insight.chain import ChainSpec
from pos_loyalty.migrations import upgrade_central
from pos_loyalty.offers.file import parse_offers
from pos_loyalty.server.central import CentralStore
from pos_loyalty.server.offers import queries
from pos_loyalty.server.offers.lines import member_visits, refresh_lines
from pos_loyalty.server.offers.run import run_offers
from pos_loyalty.server.sales.bulk import write_chain
from pos_loyalty.server.sales.insight import member_insight
from pos_loyalty.store.central_models import IssuedOffer, SaleRecord

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
        used = store.write(_use_offers)
        t = time.perf_counter()
        queries.figures(store, store.clock())
        report_s = time.perf_counter() - t
        store.close()
    print(f"baseline member_insight ({insight:,} members with sales): {base:.2f} s")
    print(f"offers run, dry: {dry_s:.2f} s ({dry_s / base:.2f}x baseline); "
          + ", ".join(f"{o.offer_id} {len(o.members)}" for o in dry.outcomes))
    print(f"offers run, issuing {sum(o.issued for o in real.outcomes):,} coupons: "
          f"{real_s:.2f} s ({real_s / base:.2f}x baseline)")
    print(f"cashier's lines for every member ({written:,} rows written): {lines_s:.2f} s "
          f"({lines_s / base:.2f}x baseline)")
    print(f"report offers over {used:,} uses: {report_s:.2f} s ({report_s / base:.2f}x "
          "baseline)")


def _use_offers(conn: Connection) -> int:
    """Mark each issued offer used by its member's latest sale (as a terminal's push would)."""
    sales = {m: (t, f"{p}/{x}") for m, t, p, x in conn.execute(
        select(SaleRecord.member_id, SaleRecord.terminal_id, SaleRecord.pos_id,
               SaleRecord.txn_id).where(SaleRecord.kind == "sale")
        .order_by(SaleRecord.terminal_time))}
    n = 0
    for issue_id, member_id in conn.execute(select(IssuedOffer.issue_id,
                                                   IssuedOffer.member_id)).all():
        if member_id in sales:
            terminal, ref = sales[member_id]
            conn.execute(update(IssuedOffer).where(IssuedOffer.issue_id == issue_id).values(
                status="used", used_terminal=terminal, used_txn=ref, discount=100))
            n += 1
    return n


if __name__ == "__main__":
    main()
