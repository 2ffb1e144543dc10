"""Publishing a program to 1,000 simulated terminals: how long until every one has it.

A live central (uvicorn, SQLite by default) with N enrolled terminals, each already holding
the live program (its pull cursor is current). Then a new version is published, and the
terminals sync as the daemon does for programs (``/v1/sync/horizon`` then
``/v1/sync/pull?entity=programs`` from their own cursor), ``--workers`` at a time, each
terminal polling again until it holds the new version. Printed: the time from publish
until the last terminal has it, and, as a baseline measured in the same run, the time for
the same number of ``/v1/health`` round trips over the same pool (pure HTTP cost). A real
fleet adds its sync interval (``[sync] interval_s``, default 10 s) to this.

    python bench/bench_publish.py [--terminals 1000] [--workers 16] [--db URL]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from pos_loyalty.migrations import upgrade_central
from pos_loyalty.server.app import create_app
from pos_loyalty.server.central import CentralStore
from pos_loyalty.server.config import Settings
from pos_loyalty.server.runner import ServerThread

PROGRAM = '[program]\nname = "Points"\n\n[[rule]]\nid = "base"\nkind = "earn"\n' \
          'label = "Base"\npoints = {n}\nper = 100\n'


def sync_programs(client: httpx.Client, credential: str, after: str) -> tuple[str, int]:
    """One program round of a terminal: the new cursor and the newest version it holds."""
    auth = {"Authorization": f"Bearer {credential}"}
    until = client.get("/v1/sync/horizon", headers=auth).json()["until"]
    body = client.get("/v1/sync/pull", headers=auth, params={
        "entity": "programs", "after": after, "until": until, "limit": 100}).json()
    versions = [int(r[4]) for r in body["rows"]]
    return body["after"], max(versions, default=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--terminals", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--db", default=None, help="central database URL (default: temp SQLite)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'central.db'}"
        upgrade_central(url)
        store = CentralStore(url)
        t0 = time.perf_counter()
        creds = []
        for i in range(args.terminals):
            _tid, code = store.add_terminal(f"S{i % 50:02d}", terminal_id=f"T-{i:05d}")
            creds.append(store.enroll(code).credential)
        print(f"enrolled {args.terminals} terminals in {time.perf_counter() - t0:.1f} s")
        store.publish_program(PROGRAM.format(n=1))
        app = create_app(Settings(db_url=url), store=store, migrate=False)
        with ServerThread(app) as srv, httpx.Client(
                base_url=srv.url, limits=httpx.Limits(max_connections=args.workers)) as client, \
                ThreadPoolExecutor(args.workers) as pool:
            cursors = list(pool.map(lambda c: sync_programs(client, c, "")[0], creds))
            t = time.perf_counter()
            list(pool.map(lambda _c: client.get("/v1/health").status_code, creds))
            baseline = time.perf_counter() - t

            store.publish_program(PROGRAM.format(n=2), note="bench")
            start = time.perf_counter()

            def until_new(i: int) -> tuple[float, int]:
                after, rounds = cursors[i], 0
                while True:
                    rounds += 1
                    after, version = sync_programs(client, creds[i], after)
                    if version >= 2:
                        return time.perf_counter() - start, rounds

            done = list(pool.map(until_new, range(args.terminals)))
        store.close()
    last = max(d for d, _ in done)
    rounds = max(r for _, r in done)
    print(f"publish -> all {args.terminals} terminals hold version 2: {last:.2f} s "
          f"(each needed at most {rounds} round(s); {args.workers} syncing at a time)")
    print(f"baseline, {args.terminals} /v1/health round trips on the same pool: "
          f"{baseline:.2f} s; ratio {last / baseline:.1f}x")
    print("a real fleet adds its sync interval (default 10 s) to the first figure")


if __name__ == "__main__":
    main()
