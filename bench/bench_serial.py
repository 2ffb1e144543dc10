"""Serial link throughput and latency over a pty paced at line rate (target P6).

Two real SerialEndpoints (till and terminal) talk through a PtyBridge that delivers bytes no
faster than a 115200 baud 8N1 wire (10 bits per byte). Runs two scenarios from the same
process: a clean line, and a line with 1 byte in 1,000 corrupted. For each it prints

- latency: one basket.update at a time, send() -> delivered on the other side (p50, p99),
  against the frame's theoretical wire time;
- throughput: messages queued back to back, delivered per second, against the theoretical
  stop-and-wait rate (one data frame plus its ACK on the wire per message);
- lost and duplicated messages (must both be 0);

and finally the corrupted/clean throughput ratio (P6 target: >= 80%).

    python bench/bench_serial.py [--messages N] [--baud B] [--seed S]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pos_loyalty.pos.codec import OVERHEAD, Frame, encode_frame, wire_time
from pos_loyalty.pos.messages import (
    BasketItem,
    BasketUpdate,
    Message,
    TillRequest,
    TxnCommit,
    encode_message,
)
from pos_loyalty.pos.pty import PtyBridge
from pos_loyalty.pos.transport import SerialEndpoint

LINES = (BasketItem("4006381333931", 2, 249, "food"),
         BasketItem("5000112548167", 1, 1099, "drinks"))


def commit(i: int) -> TillRequest:
    return TxnCommit("POS-1", f"TXN-{i:06d}")


def basket1(i: int) -> TillRequest:
    return BasketUpdate("POS-1", f"TXN-{i:06d}", LINES[:1])


def basket2(i: int) -> TillRequest:
    return BasketUpdate("POS-1", f"TXN-{i:06d}", LINES)


def sale_mix(i: int) -> TillRequest:
    """What a till sends during a sale: a first line, the second line, the commit."""
    return (basket1, basket2, commit)[i % 3](i)


MESSAGES: dict[str, tuple[Callable[[int], TillRequest], float]] = {
    # name: (message maker, share of the run's wire time)
    "txn.commit": (commit, 0.2), "basket 2 lines": (basket2, 0.3), "sale mix": (sale_mix, 1.0),
}


@dataclass
class Result:
    name: str
    latencies: list[float]
    rate: float
    theoretical_rate: float
    frame_wire: float
    lost: int
    duplicated: int
    retransmissions: int
    naks: int
    corrupted_bytes: int


class Receiver:
    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self.arrival: dict[str, float] = {}
        self.cond = threading.Condition()

    def __call__(self, msg: Message) -> None:
        with self.cond:
            key = str(getattr(msg, "txn_id", ""))
            self.seen[key] += 1
            self.arrival.setdefault(key, time.perf_counter())
            self.cond.notify_all()

    def wait(self, key: str, timeout: float = 30.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: key in self.seen, timeout)

    def wait_count(self, n: int, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.seen) >= n, timeout)


def run(name: str, make: Callable[[int], TillRequest], corrupt_rate: float,
        n_latency: int, n_throughput: int, baud: int, seed: int) -> Result:
    recv = Receiver()
    with PtyBridge(corrupt_rate=corrupt_rate, seed=seed, baudrate=baud) as bridge:
        term = SerialEndpoint(bridge.terminal_path, recv, role="terminal", baudrate=baud)
        till = SerialEndpoint(bridge.till_path, lambda m: None, role="till", baudrate=baud)
        term.start()
        till.start()
        try:
            deadline = time.monotonic() + 10
            while not (term.link_up and till.link_up):
                if time.monotonic() > deadline:
                    raise SystemExit(f"{name}: link did not come up")
                time.sleep(0.01)
            # Latency: one message in flight at a time.
            latencies = []
            for i in range(n_latency):
                msg = make(i)
                t0 = time.perf_counter()
                till.send(msg)
                if not recv.wait(msg.txn_id):
                    break
                latencies.append(recv.arrival[msg.txn_id] - t0)
            # Throughput: back to back, the link queue kept non-empty.
            first = n_latency
            total = n_latency + n_throughput
            t0 = time.perf_counter()
            i = first
            while i < total:
                if till.pending < 50:
                    till.send(make(i))
                    i += 1
                else:
                    time.sleep(0.002)
            recv.wait_count(total, timeout=120)
            last = max(recv.arrival[make(k).txn_id] for k in range(first, total)
                       if make(k).txn_id in recv.arrival)
            rate = n_throughput / (last - t0)
            stats = till.stats
            term_stats = term.stats
            corrupted = bridge.to_till.corrupted + bridge.to_terminal.corrupted
        finally:
            till.close()
            term.close()
    def frame_len(k: int) -> int:
        return len(encode_message(make(k), "till")) + OVERHEAD

    # Stop-and-wait: each message costs its data frame plus an ACK frame on the wire.
    per_message = statistics.fmean(wire_time(frame_len(k) + OVERHEAD, baud)
                                   for k in range(first, total))
    lat_wire = statistics.fmean(wire_time(frame_len(k), baud) for k in range(n_latency))
    sent = {make(k).txn_id for k in range(total)}
    return Result(
        name=name, latencies=latencies, rate=rate, theoretical_rate=1 / per_message,
        frame_wire=lat_wire, lost=len(sent - set(recv.seen)),
        duplicated=sum(c - 1 for c in recv.seen.values() if c > 1),
        retransmissions=stats.retransmissions, naks=term_stats.naks_sent + stats.naks_sent,
        corrupted_bytes=corrupted)


def raw_baseline(make: Callable[[int], TillRequest], n: int, baud: int) -> list[float]:
    """Latency of the same frames written and read with bare pyserial over the same kind of
    paced pty: what the wire and the pty cost without our link."""
    import serial

    out = []
    with PtyBridge(baudrate=baud) as bridge, \
            serial.Serial(bridge.till_path, baud, timeout=1) as tx, \
            serial.Serial(bridge.terminal_path, baud, timeout=1) as rx:
        for i in range(n):
            wire = encode_frame(Frame("D", i % 256, encode_message(make(i), "till")))
            t0 = time.perf_counter()
            tx.write(wire)
            got = b""
            while not got.endswith(b"\x03"):
                chunk = rx.read(rx.in_waiting or 1)
                if not chunk:
                    raise SystemExit("raw baseline: frame lost on a clean pty")
                got += chunk
            out.append(time.perf_counter() - t0)
    return out


def report(r: Result) -> None:
    lat = sorted(r.latencies)
    p50 = statistics.median(lat) * 1000
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
    print(f"[{r.name}]")
    print(f"  latency   p50 {p50:7.2f} ms  p99 {p99:7.2f} ms   "
          f"(frame wire time {r.frame_wire * 1000:.2f} ms; p50 overhead "
          f"{p50 - r.frame_wire * 1000:+.2f} ms)")
    print(f"  throughput {r.rate:7.1f} msg/s  theoretical {r.theoretical_rate:7.1f} msg/s  "
          f"ratio {r.rate / r.theoretical_rate:6.1%}")
    print(f"  lost {r.lost}  duplicated {r.duplicated}  corrupted bytes {r.corrupted_bytes}  "
          f"retransmissions {r.retransmissions}  NAKs {r.naks}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=8.0,
                    help="approximate wire time of the sale-mix throughput run")
    ap.add_argument("--latency-messages", type=int, default=40)
    ap.add_argument("--baud", type=int, default=115200)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    verdict = True
    print(f"serial link over a pty paced at {args.baud} baud 8N1, stop-and-wait, "
          f"1 byte in 1,000 corrupted in the noisy runs")
    for label, (make, share) in MESSAGES.items():
        sizes = [len(encode_message(make(k), "till")) + OVERHEAD for k in range(3)]
        size = statistics.fmean(sizes)
        per_msg = wire_time(int(size) + OVERHEAD, args.baud)
        n = max(50, int(args.seconds * share / per_msg))
        clean = run(f"{label}, clean", make, 0.0, args.latency_messages, n, args.baud,
                    args.seed)
        report(clean)
        raw = statistics.median(raw_baseline(make, args.latency_messages, args.baud)) * 1000
        ours = statistics.median(clean.latencies) * 1000
        print(f"  baseline: bare pyserial over the same paced pty p50 {raw:.2f} ms; "
              f"the link adds {ours - raw:+.2f} ms")
        noisy = run(f"{label}, 1/1000 corrupted", make, 0.001, args.latency_messages, n,
                    args.baud, args.seed)
        report(noisy)
        ratio = noisy.rate / clean.rate
        # A frame of L bytes survives with probability 0.999**L, so it needs 1/0.999**L
        # transmissions on average: that bounds the ratio for stop-and-wait.
        bound = sum(sizes) / sum(n / 0.999 ** (n + OVERHEAD) for n in sizes)
        exact = noisy.lost == noisy.duplicated == clean.lost == clean.duplicated == 0
        verdict = verdict and exact and (ratio >= 0.8 or label != "sale mix")
        print(f"  => {label}: frame ~{size:.0f} B, corrupted/clean {ratio:.1%} "
              f"(stop-and-wait bound {bound:.1%}), "
              f"lost {clean.lost + noisy.lost}, duplicated {clean.duplicated + noisy.duplicated}")
    print(f"P6 (sale mix >= 80% of clean, 0 lost, 0 duplicated everywhere): "
          f"{'PASS' if verdict else 'FAIL'}")
    return 0 if verdict else 1


if __name__ == "__main__":
    sys.exit(main())
