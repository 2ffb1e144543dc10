"""What this machine charges a tap answer for the idle gap before it (P1's floor).

A till is idle between two cards (in bench_tap_e2e.py, 0.5 s: the card is taken away and
the next one put down). On a dedicated till PC the work of a tap answer costs the same after
a pause as back to back. On a host that lets an idle process's memory and caches go cold (a
shared virtual machine) the first touch of each page after a pause costs microseconds, and a
lookup that takes 0.02 ms back to back takes milliseconds after half a second: no terminal
code can answer a tap faster than that. This script shows which kind of host it runs on.

For each pause it sleeps, then times, in turn on the same thread:
  - the terminal's own tap lookup (``LocalStore.find_by_card``, what ``pos-loyalty run`` runs)
  - a bare sqlite3 lookup of the same card on the same file (the least a lookup can do)
  - a Python dict lookup of the same card (no SQLite at all)
The first pause, 0, is the baseline: all three back to back, every page hot.

    python bench/bench_idle_penalty.py [--members 100000] [--samples 60]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from seed import LOOKUP_SQL, pct, seed_members

from pos_loyalty.migrations import upgrade_terminal
from pos_loyalty.store import LocalStore

PAUSES_S = (0.0, 0.001, 0.01, 0.05, 0.2, 0.5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--members", type=int, default=100_000)
    ap.add_argument("--samples", type=int, default=60)
    args = ap.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'terminal.db'}"
        upgrade_terminal(url)
        store = LocalStore(url, terminal_id="T-1")
        seed_members(store, args.members)
        bare = sqlite3.connect(Path(tmp) / "terminal.db")
        table = {f"C-{i:07d}": (f"M-{i:07d}", f"Member {i}", None, i % 500)
                 for i in range(args.members)}
        ways: dict[str, Callable[[str], object]] = {
            "terminal lookup": store.find_by_card,
            "bare sqlite3": lambda card: bare.execute(LOOKUP_SQL, (card,)).fetchone(),
            "dict": table.get,
        }
        for _ in range(2000):  # warm every way up
            card = f"C-{rng.randrange(args.members):07d}"
            for way in ways.values():
                way(card)
        print(f"{args.members:,} members, {args.samples} samples per pause; ms per lookup")
        for pause in PAUSES_S:
            times: dict[str, list[float]] = {name: [] for name in ways}
            for _ in range(args.samples):
                card = f"C-{rng.randrange(args.members):07d}"
                for name, way in ways.items():
                    if pause:
                        time.sleep(pause)
                    start = time.perf_counter()
                    if way(card) is None:
                        raise SystemExit(f"{name}: {card} not found")
                    times[name].append((time.perf_counter() - start) * 1000)
            cells = "   ".join(f"{name} p50 {pct(xs)[0]:7.3f} p99 {pct(xs)[1]:7.3f}"
                               for name, xs in times.items())
            print(f"pause {pause * 1000:5.0f} ms   {cells}", flush=True)
        bare.close()
        store.close()


if __name__ == "__main__":
    main()
