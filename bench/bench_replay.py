"""Replay speed: ``pos-loyalty quote --replay`` over 100,000 past baskets.

Target: under 30 s. Printed beside a baseline from the same run: reading and checking the
same file without quoting it (what any replay must pay), and with ``--against`` (two
programs, the form store IT uses). The command itself is timed as a subprocess, start-up
included; the in-process rows split that time into reading and quoting.

    python bench/bench_replay.py [--sales 100000] [--program examples/programs/clothing-chain.toml]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pos_loyalty.rules import load_program, parse_sales, replay  # noqa: E402

CATEGORIES = ["girls-clothing", "denim", "gift-card", "wear", "shoes", "coffee", "pastry"]


def write_sales(path: Path, n: int, tiers: tuple[str, ...], seed: int = 7) -> int:
    """``n`` sales of 1 to 8 lines over a year, as JSON lines; returns the basket lines."""
    rnd = random.Random(seed)
    lines = 0
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            k = rnd.randint(1, 8)
            lines += k
            day = 1 + i * 365 // n
            sale = {
                "txn_id": f"S{i}",
                "time": f"2026-{1 + (day - 1) // 31 % 12:02d}-{1 + (day - 1) % 28:02d}T"
                        f"{9 + i % 10:02d}:{i % 60:02d}",
                "merchant_id": "STORE-12",
                "member": {"member_id": f"M{rnd.randint(1, 20000)}",
                           "tier": rnd.choice(tiers) if tiers else None,
                           "lifetime_spend": rnd.randint(0, 400_000)},
                "lines": [{"sku": f"SKU{rnd.randint(1, 500)}", "qty": rnd.randint(1, 3),
                           "unit_price": rnd.choice([0, 199, 999, 2499, 5999]),
                           "category": rnd.choice(CATEGORIES)} for _ in range(k)],
            }
            f.write(json.dumps(sale, separators=(",", ":")) + "\n")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sales", type=int, default=100_000)
    ap.add_argument("--program", default=str(ROOT / "examples/programs/clothing-chain.toml"))
    ap.add_argument("--against", default=str(ROOT / "examples/programs/01-points.toml"))
    args = ap.parse_args()
    program = load_program(args.program)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sales.jsonl"
        n_lines = write_sales(path, args.sales, program.tier_levels())
        print(f"{args.sales} sales, {n_lines} basket lines, {path.stat().st_size / 1e6:.1f} MB; "
              f"program {program.name!r} ({len(program.active_rules)} rules)")
        rows: list[tuple[str, float]] = []
        t0 = time.perf_counter()
        with path.open(encoding="utf-8") as f:
            sales = list(parse_sales(f, "jsonl", program))
        rows.append(("baseline: read and check the file", time.perf_counter() - t0))
        t0 = time.perf_counter()
        report = replay(sales, program)
        rows.append(("replay: quote every sale", time.perf_counter() - t0))
        cmd = [str(Path(sys.executable).parent / "pos-loyalty"), "quote", "--program", args.program,
               "--replay", str(path)]
        for name, extra in (("command: quote --replay", []),
                            ("command: ... --against OLD", ["--against", args.against])):
            t0 = time.perf_counter()
            done = subprocess.run(cmd + extra, capture_output=True, text=True, check=False)
            rows.append((name, time.perf_counter() - t0))
            if done.returncode != 0:
                raise SystemExit(done.stderr)
        base = rows[0][1]
        print(f"{'case':38} {'seconds':>9} {'x read':>8} {'us/sale':>9}")
        for name, secs in rows:
            print(f"{name:38} {secs:9.2f} {secs / base:8.1f} {secs * 1e6 / args.sales:9.1f}")
        total = rows[2][1]
        print(f"total cost {report.total.cost / 100:.2f} over {report.sales} sales")
        print(f"target --replay of {args.sales} sales < 30 s: "
              f"{'meets' if total < 30 else 'misses'} ({total:.1f} s)")


if __name__ == "__main__":
    main()
