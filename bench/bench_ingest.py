"""P5: central ledger ingest, events/s through the HTTP API into PostgreSQL.

Several simulated terminals push batches at once to a real ``pos-loyalty server`` process on
loopback, with every check central makes on an event (known member, kind and sign, per-event
and per-terminal-day caps, repeated and known ids, sequence reuse and gaps, clock flags).
The baseline of the same run loads the same number of events (fresh ids) with PostgreSQL
``COPY`` straight into the ledger table, from as many connections: the cost of only writing
the rows. Every HTTP event is checked to have been applied exactly once, and every balance
to equal the sum of its applied ledger rows.

    python bench/bench_ingest.py [--events 200000] [--terminals 4] [--batch 1000]

Uses POS_LOYALTY_PG_URL if set, else a throwaway cluster (tests/pg.py). Target: >= 20,000/s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pos_loyalty.ids import uuid7  # noqa: E402
from pos_loyalty.migrations import upgrade_central  # noqa: E402
from pos_loyalty.server.central import CentralStore  # noqa: E402
from tests.pg import PgDatabases, pg_server  # noqa: E402

T0 = datetime(2026, 7, 1, 9)


def make_batches(terminal_id: str, members: int, total: int, batch: int) -> list[bytes]:
    """Pre-encoded push bodies, so the load generator spends no time building JSON."""
    bodies = []
    for start in range(0, total, batch):
        events = [{
            "event_id": str(uuid7()), "terminal_id": terminal_id, "terminal_seq": seq + 1,
            "member_id": f"M{(seq * 7919) % members:07d}", "kind": "earn", "points": 1 + seq % 9,
            "txn_ref": f"POS-1/{seq}", "terminal_time": (T0 + timedelta(seconds=seq)).isoformat(),
            "offline": False,
        } for seq in range(start, min(total, start + batch))]
        bodies.append(json.dumps({"events": events}).encode())
    return bodies


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU a process used so far (Linux /proc), to say where the time goes."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("server exited early")
        try:
            if httpx.get(f"{url}/v1/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("server did not come up")


def http_run(url: str, creds: list[str], bodies: list[list[bytes]]) -> float:
    errors: list[str] = []

    def terminal(cred: str, mine: list[bytes]) -> None:
        with httpx.Client(base_url=url, timeout=120, headers={
                "Authorization": f"Bearer {cred}", "Content-Type": "application/json"}) as c:
            for body in mine:
                r = c.post("/v1/ledger/push", content=body)
                if r.status_code != 200:
                    errors.append(f"{r.status_code} {r.text[:200]}")
                    return

    threads = [threading.Thread(target=terminal, args=(c, b)) for c, b in zip(creds, bodies,
                                                                               strict=True)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - t
    if errors:
        raise SystemExit(f"push failed: {errors[0]}")
    return elapsed


def seed_members(dsn: str, members: int) -> None:
    """Members central knows (an event for an unknown member would be held), zero balances."""
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        with cur.copy("COPY members (member_id, display_name, status, change_xid) "
                      "FROM STDIN") as copy:
            for m in range(members):
                copy.write_row((f"M{m:07d}", "", "active", 1))
        with cur.copy("COPY balances (member_id, balance, change_xid) FROM STDIN") as copy:
            for m in range(members):
                copy.write_row((f"M{m:07d}", 0, 1))


def copy_run(dsn: str, terminals: int, members: int, per_terminal: int, batch: int) -> float:
    """Baseline: the same number of ledger rows loaded with COPY, one transaction per batch."""
    cols = ("member_id, event_id, terminal_id, store_id, terminal_seq, kind, points, txn_ref, "
            "terminal_time, received_at, offline, flags, status, reason")

    def worker(rows: list[list[tuple[object, ...]]]) -> None:
        with psycopg.connect(dsn) as conn:
            for chunk in rows:
                with conn.transaction(), conn.cursor() as cur, \
                        cur.copy(f"COPY ledger_events ({cols}) FROM STDIN") as copy:
                    for r in chunk:
                        copy.write_row(r)

    now = datetime(2026, 7, 1, 10)
    work = []
    for k in range(terminals):
        rows = [(f"M{(s * 7919) % members:07d}", str(uuid7()), f"COPY-{k}", "S1", s + 1, "earn",
                 1 + s % 9, f"POS-1/{s}", T0 + timedelta(seconds=s), now, False, "",
                 "applied", "") for s in range(per_terminal)]
        work.append([rows[i:i + batch] for i in range(0, len(rows), batch)])
    threads = [threading.Thread(target=worker, args=(w,)) for w in work]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000, help="total events over HTTP")
    ap.add_argument("--terminals", type=int, default=4)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--members", type=int, default=50_000)
    args = ap.parse_args()
    per = args.events // args.terminals
    total = per * args.terminals
    with pg_server() as server_url:
        dbs = PgDatabases(server_url)
        db_url = dbs.create(migrated=False)
        upgrade_central(db_url)
        central = CentralStore(db_url)
        creds, tids = [], []
        for _ in range(args.terminals):
            tid, code = central.add_terminal("S1")
            creds.append(central.enroll(code).credential)
            tids.append(tid)
        dsn = db_url.replace("postgresql+psycopg://", "postgresql://")
        seed_members(dsn, args.members)
        print(f"preparing {total} events for {args.terminals} terminals "
              f"(batches of {args.batch})...", flush=True)
        bodies = [make_batches(tid, args.members, per, args.batch) for tid in tids]
        port = int(os.environ.get("BENCH_PORT", "0")) or _free_port()
        env = dict(os.environ, PYTHONPATH=str(REPO))
        proc = subprocess.Popen([sys.executable, "-m", "pos_loyalty", "server", "--host",
                                 "127.0.0.1", "--port", str(port), "--db", db_url], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_up(url, proc)
            cpu0 = cpu_seconds(proc.pid)
            http_s = http_run(url, creds, bodies)
            cpu1 = cpu_seconds(proc.pid)
            again_s = http_run(url, creds, [b[:5] for b in bodies])  # replays: duplicates
        finally:
            proc.terminate()
            proc.wait(10)
        landed = sum(central.ledger_count(t) for t in tids)
        held = len(central.held())
        bent = central.integrity()
        raw_s = copy_run(dsn, args.terminals, args.members, per, args.batch)
        central.close()
        dbs.drop(db_url)
        dbs.close()
    assert landed == total, f"{landed} events landed for {total} pushed"
    assert held == 0, f"{held} events held"
    assert not bent, f"{len(bent)} balances differ from their ledger"
    http_rate = total / http_s
    raw_rate = total / raw_s
    print(f"HTTP API  : {total} events in {http_s:.2f} s = {http_rate:,.0f} events/s "
          f"({args.terminals} terminals, batch {args.batch}, every check on; applied exactly "
          f"once: {landed}, balances = ledger sums)")
    print(f"COPY      : {total} events in {raw_s:.2f} s = {raw_rate:,.0f} events/s "
          f"(same batches, PostgreSQL COPY into ledger_events, no checks, no balances)")
    if cpu0 is not None and cpu1 is not None:
        print(f"server process CPU: {cpu1 - cpu0:.2f} s for {http_s:.2f} s of ingest "
              f"({(cpu1 - cpu0) / total * 1e6:.0f} us/event; the rest of the 2 cores went to "
              f"PostgreSQL, the load generator and anything else on the machine)")
    print(f"ratio HTTP/COPY: {http_rate / raw_rate:.2f}; replayed 5 batches/terminal as "
          f"duplicates in {again_s:.2f} s")
    print(f"target P5 >= 20,000 events/s: {'met' if http_rate >= 20_000 else 'NOT met'}")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    main()
