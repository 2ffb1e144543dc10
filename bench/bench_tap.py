"""Reader-path tap latency over nfcpy's udp driver: 1,000 simulated taps of member cards.

For every tap it records
- read: ``TapEvent.read_ms``, from nfcpy discovering the tag to its NDEF being read and
  classified (signature verified), inside the Reader;
- tap: from the emulated card entering the field to ``on_tap`` being called: anticollision,
  nfcpy's NTAG activation (the 10 ms ``1A 00`` probe, re-sense, GET_VERSION), the READs, the
  signature check.

Baselines measured in the same run: nfcpy alone activating and reading the same kind of tag
with a bare ``connect()`` (no Reader, no verification), and one Ed25519 ``classify()``. The
Reader's overhead is the ratio of its tap time to the bare nfcpy read.

    python bench/bench_tap.py [--taps 1000] [--baseline 200]

Each tap waits for the reader to notice the previous card left (nfcpy's presence check times
out in about 0.3 s), so 1,000 taps take about six minutes; the latency figures exclude that.
"""

from __future__ import annotations

import argparse
import queue
import statistics
import threading
import time
from typing import Any

import nfc

from pos_loyalty.nfc.cardformat import classify, member_card_ndef
from pos_loyalty.nfc.demo_keys import DEMO_ISSUER, demo_trust
from pos_loyalty.nfc.events import TapEvent
from pos_loyalty.nfc.reader import Reader
from pos_loyalty.nfc.sim import cards
from pos_loyalty.nfc.sim.emulator import TagEmulator


def pcts(samples: list[float]) -> tuple[float, float, float]:
    qs = statistics.quantiles(samples, n=100, method="inclusive")
    return qs[49], qs[98], max(samples)


def line(name: str, samples: list[float], unit: str = "ms") -> str:
    p50, p99, worst = pcts(samples)
    return f"{name:<44} p50 {p50:8.2f} {unit}   p99 {p99:8.2f} {unit}   max {worst:8.2f} {unit}"


def bare_nfcpy(n: int) -> list[float]:
    """nfcpy connect() + NDEF read of a held NTAG213, no Reader: the floor we build on."""
    out: list[float] = []
    with TagEmulator() as emu:
        emu.present(cards.member_card("BASE-1"))
        clf = nfc.ContactlessFrontend(emu.path)
        try:
            def on_connect(tag: Any) -> bool:
                assert tag.ndef is not None and tag.ndef.octets
                return False

            rdwr = {"targets": ["106A"], "iterations": 1, "on-connect": on_connect}
            for _ in range(n):
                t0 = time.perf_counter()
                assert clf.connect(rdwr=rdwr)
                out.append((time.perf_counter() - t0) * 1000)
        finally:
            clf.close()
    return out


def classify_cost(n: int) -> list[float]:
    uid = bytes.fromhex("04A1B2C3D4E5F6")
    octets = member_card_ndef("CARD-1", uid, DEMO_ISSUER)
    trust = demo_trust()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        classify(uid, "NTAG213", octets, trust)
        out.append((time.perf_counter() - t0) * 1e6)
    return out


def reader_taps(n: int) -> tuple[list[float], list[float], list[str]]:
    events: queue.Queue[TapEvent] = queue.Queue()
    tags = [cards.member_card(f"BENCH-{i:04d}") for i in range(50)]
    read, tap = [], []
    refused: list[str] = []
    with TagEmulator() as emu:
        reader = Reader(emu.path, trust=demo_trust(), debounce_s=0.0)
        stop = threading.Event()
        thread = threading.Thread(target=reader.run, args=(events.put, stop))
        thread.start()
        try:
            for i in range(n):
                deadline = time.monotonic() + 5
                while not emu.reader_waiting and time.monotonic() < deadline:
                    time.sleep(0.002)
                t0 = time.perf_counter()
                emu.present(tags[i % len(tags)])
                event = events.get(timeout=10)
                emu.remove()
                tap.append((event.read_done - t0) * 1000)
                read.append(event.read_ms)
                if event.kind != "member":
                    refused.append(event.reason or event.kind)
                if (i + 1) % 100 == 0:
                    print(f"  {i + 1} taps", flush=True)
        finally:
            stop.set()
            thread.join()
    return read, tap, refused


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--taps", type=int, default=1000)
    ap.add_argument("--baseline", type=int, default=200)
    args = ap.parse_args()
    print(f"baseline: bare nfcpy connect+read x{args.baseline}, classify x{args.baseline * 10}")
    base = bare_nfcpy(args.baseline)
    cost = classify_cost(args.baseline * 10)
    print(f"reader: {args.taps} taps through Reader over udp")
    read, tap, refused = reader_taps(args.taps)
    print()
    print(line("bare nfcpy connect + NDEF read (baseline)", base))
    print(line("classify() incl. Ed25519 verify", cost, "us"))
    print(line("Reader: discovered -> read + classified", read))
    print(line("Reader: card in field -> on_tap", tap))
    ratio = pcts(tap)[0] / pcts(base)[0]
    print(f"tap p50 / bare nfcpy p50 = {ratio:.2f}  (refused: {len(refused)} of {args.taps})")
    for reason in sorted(set(refused)):
        print(f"  refused {refused.count(reason)}x: {reason}")


if __name__ == "__main__":
    main()
