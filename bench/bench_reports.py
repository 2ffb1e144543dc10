"""P10: the owner's HTML report over a generated chain (100,000 members, a year of sales), on
SQLite and on PostgreSQL, beside the plain-SQL aggregates it is built on measured in the same
run; then the page rendered in headless Chromium and a screenshot saved.

The chain comes from `pos-loyalty sim chain`'s generator (written in bulk: COPY on
PostgreSQL). The report is every owner report in one page (``report all --format html``).
Target: the HTML report builds in < 30 s on 2 cores.

    python bench/bench_reports.py [--members 100000] [--stores 20] [--days 365]
                                  [--backend sqlite|postgresql|both] [--out DIR]
    python bench/bench_reports.py --db URL   # a chain `pos-loyalty sim chain` made already

Uses POS_LOYALTY_PG_URL if set, else a throwaway cluster (tests/pg.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from sqlalchemy import text

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pos_loyalty.insight.chain import PROGRAM, ChainSpec  # noqa: E402
from pos_loyalty.migrations import upgrade_central  # noqa: E402
from pos_loyalty.server.central import CentralStore  # noqa: E402
from pos_loyalty.server.console.pages.reports import standalone_html  # noqa: E402
from pos_loyalty.server.sales import reports  # noqa: E402
from pos_loyalty.server.sales.bulk import write_chain  # noqa: E402
from tests.pg import PgDatabases, pg_server  # noqa: E402

END = date(2026, 11, 30)
BASELINE = {
    "sales by kind": "SELECT kind, count(*), sum(paid_total) FROM sales GROUP BY kind",
    "member visit days": (
        "SELECT count(*) FROM (SELECT member_id, {day} FROM sales WHERE kind = 'sale' AND "
        "member_id IS NOT NULL GROUP BY member_id, {day}) AS v"),
    "ledger by kind": "SELECT kind, sum(points) FROM ledger_events GROUP BY kind",
}


@contextmanager
def database(backend: str, workdir: Path) -> Iterator[str]:
    if backend == "sqlite":
        url = f"sqlite:///{workdir / 'central.db'}"
        upgrade_central(url)
        yield url
        return
    with pg_server() as server_url:
        dbs = PgDatabases(server_url)
        url = dbs.create(migrated=False)
        upgrade_central(url)
        yield url


def run(backend: str, args: argparse.Namespace, out: Path) -> float:
    with tempfile.TemporaryDirectory() as tmp, database(backend, Path(tmp)) as url:
        store = CentralStore(url)
        spec = ChainSpec(stores=args.stores, members=args.members, days=args.days,
                         seed=args.seed, end=END)
        t0 = time.perf_counter()
        counts = write_chain(store, spec)
        store.publish_program(PROGRAM)
        gen = time.perf_counter() - t0
        print(f"[{backend}] generated in {gen:.1f} s: " + ", ".join(
            f"{n:,} {t}" for t, n in counts.items()))
        store.close()
        return measure(url, backend, out)


def measure(url: str, backend: str, out: Path) -> float:
    """Time the report on the chain at ``url``; the figure the target is about."""
    store = CentralStore(url)
    if store.is_pg:
        with store.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    day = "CAST(terminal_time AS DATE)" if store.is_pg else "date(terminal_time)"
    with store.read() as conn:
        t0 = time.perf_counter()
        for sql in BASELINE.values():
            conn.execute(text(sql.format(day=day))).all()
        base = time.perf_counter() - t0
    print(f"[{backend}] baseline, the plain-SQL aggregates below the report: {base:.2f} s")
    opts = reports.Options(until=END)
    for name in reports.NAMES:
        t0 = time.perf_counter()
        reports.build(store, name, opts)
        print(f"[{backend}]   {name:<10} {time.perf_counter() - t0:6.2f} s")
    t0 = time.perf_counter()
    html = standalone_html(reports.build_all(store, opts))
    build = time.perf_counter() - t0
    page = out / f"report-{backend}.html"
    page.write_text(html, encoding="utf-8")
    print(f"[{backend}] HTML report (every report, charts): {build:.2f} s "
          f"({build / base:.1f}x the baseline), {len(html) / 1024:.0f} KB "
          f"-> target < 30 s: {'OK' if build < 30 else 'MISSED'}")
    shot(page, out / f"report-{backend}.png", backend)
    store.close()
    return build


def shot(page: Path, png: Path, backend: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": 1280, "height": 900})
        t0 = time.perf_counter()
        tab.goto(page.as_uri())
        shown = tab.locator("section.report").count()
        charts = tab.locator("figure.chart svg").count()
        tab.screenshot(path=str(png), full_page=True)
        print(f"[{backend}] Chromium: {shown} reports, {charts} charts rendered in "
              f"{time.perf_counter() - t0:.2f} s; screenshot {png}")
        browser.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=100_000)
    ap.add_argument("--stores", type=int, default=20)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out")
    ap.add_argument("--db", default=None, help="measure this chain instead of generating one")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.db:
        measure(args.db, "postgresql" if args.db.startswith("postgresql") else "sqlite",
                args.out)
        return
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for b in backends:
        run(b, args, args.out)


if __name__ == "__main__":
    main()
