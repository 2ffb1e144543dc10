"""P4: bootstrap of a new terminal from central with 1M members, with the progress bar.

Central (PostgreSQL) is loaded with N members, N cards and N balances; a real
``pos-loyalty server`` process serves it on loopback; a fresh terminal enrolls and pulls
everything through the HTTP API into its SQLite store, drawing a rich progress bar. As the
baseline of the same run, the same rows are written straight into an empty terminal store
with sqlite3 (no network, no JSON): the floor a bootstrap could approach.

    python bench/bench_bootstrap.py [--members 1000000] [--page 20000]

Uses POS_LOYALTY_PG_URL if set, else a throwaway cluster (tests/pg.py). Target: < 60 s.
"""

from __future__ import annotations

import argparse
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TimeElapsedColumn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pos_loyalty.migrations import upgrade_central, upgrade_terminal  # noqa: E402
from pos_loyalty.server.central import CentralStore  # noqa: E402
from pos_loyalty.store.local import LocalStore  # noqa: E402
from pos_loyalty.sync.client import SyncClient, run_sync  # noqa: E402
from tests.pg import PgDatabases, pg_server  # noqa: E402


def load_central(dsn: str, n: int) -> None:
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO members (member_id, display_name, tier, birthday, status, change_xid) "
            "SELECT 'M' || lpad(g::text, 8, '0'), 'Member ' || g, "
            "CASE WHEN g %% 10 = 0 THEN 'gold' END, NULL, 'active', "
            "pg_current_xact_id()::text::bigint FROM generate_series(1, %s) g", (n,))
        cur.execute(
            "INSERT INTO cards (card_id, member_id, uid, status, change_xid) "
            "SELECT 'C' || lpad(g::text, 8, '0'), 'M' || lpad(g::text, 8, '0'), "
            "upper(substr(md5(g::text), 1, 14)), 'active', pg_current_xact_id()::text::bigint "
            "FROM generate_series(1, %s) g", (n,))
        cur.execute(
            "INSERT INTO balances (member_id, balance, change_xid) "
            "SELECT 'M' || lpad(g::text, 8, '0'), g %% 5000, pg_current_xact_id()::text::bigint "
            "FROM generate_series(1, %s) g", (n,))
        cur.execute("ANALYZE")


def baseline(dsn: str, path: Path) -> float:
    """Same rows, read from PostgreSQL and written with plain sqlite3 executemany."""
    url = f"sqlite:///{path}"
    upgrade_terminal(url)
    t = time.perf_counter()
    with psycopg.connect(dsn) as pg:
        members = pg.execute("SELECT m.member_id, m.display_name, m.tier, b.balance FROM "
                             "members m JOIN balances b USING (member_id)").fetchall()
        cards = pg.execute("SELECT card_id, member_id, uid, status FROM cards").fetchall()
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    with db:
        db.executemany("INSERT INTO members (member_id, display_name, tier, balance, "
                       "lifetime_spend, visits) VALUES (?, ?, ?, ?, 0, 0)", members)
        db.executemany("INSERT INTO cards (card_id, member_id, uid, status) VALUES (?, ?, ?, ?)",
                       cards)
    db.close()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=1_000_000)
    ap.add_argument("--page", type=int, default=20_000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-bootstrap-"))
    with pg_server() as server_url:
        dbs = PgDatabases(server_url)
        db_url = dbs.create(migrated=False)
        upgrade_central(db_url)
        dsn = db_url.replace("postgresql+psycopg://", "postgresql://")
        t = time.perf_counter()
        load_central(dsn, args.members)
        print(f"central loaded with {args.members:,} members/cards/balances in "
              f"{time.perf_counter() - t:.1f} s", flush=True)
        central = CentralStore(db_url)
        _tid, code = central.add_terminal("S1")
        central.close()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = dict(os.environ, PYTHONPATH=str(REPO))
        proc = subprocess.Popen([sys.executable, "-m", "pos_loyalty", "server", "--port",
                                 str(port), "--db", db_url], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.get(f"{url}/v1/health", timeout=1).raise_for_status()
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise SystemExit("server did not come up") from None
                    time.sleep(0.1)
            local_url = f"sqlite:///{tmp / 'terminal.db'}"
            t = time.perf_counter()
            upgrade_terminal(local_url)
            local = LocalStore(local_url)
            with SyncClient(url) as anon:
                answer = anon.enroll(code)
            local.set_enrollment(server_url=url, terminal_id=answer["terminal_id"],
                                 store_id=answer["store_id"], credential=answer["credential"])
            with SyncClient(url, answer["credential"], timeout=120) as client, Progress(
                "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(),
            ) as bar:
                tasks: dict[str, TaskID] = {}

                def progress(entity: str, done: int, total: int) -> None:
                    if entity not in tasks:
                        tasks[entity] = bar.add_task(entity, total=total or 1)
                    bar.update(tasks[entity], completed=done if total else 1, total=total or 1)

                report = run_sync(local, client, page=args.page, progress=progress)
            boot_s = time.perf_counter() - t
            count = local.member_count()
            probe = local.find_by_card(f"C{args.members:08d}")
            local.close()
        finally:
            proc.terminate()
            proc.wait(10)
        base_s = baseline(dsn, tmp / "baseline.db")
        dbs.drop(db_url)
        dbs.close()
    assert count == args.members, f"{count} members arrived of {args.members}"
    assert probe is not None and probe.balance == args.members % 5000
    print(f"bootstrap over HTTP: {args.members:,} members + cards + balances in {boot_s:.1f} s "
          f"({sum(report.pulled.values()) / boot_s:,.0f} rows/s, pages of {args.page})")
    print(f"raw sqlite3 baseline (same rows, no HTTP/JSON): {base_s:.1f} s; "
          f"ratio {boot_s / base_s:.1f}x")
    print(f"target P4 < 60 s: {'met' if boot_s < 60 else 'NOT met'}")
    for f in tmp.iterdir():
        f.unlink()
    tmp.rmdir()


if __name__ == "__main__":
    main()
