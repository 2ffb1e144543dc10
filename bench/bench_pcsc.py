"""PC/SC backend read time through a real pcscd with the vpcd virtual reader.

Taps an NTAG213 member card, a phone's Type 4 card emulation and an NTAG 424 DNA (SUN) on
the virtual reader, each ``--taps`` times, with the reader pipeline (``Reader`` on a
``pcsc:`` path) producing TapEvents, and records ``read_ms`` (card connected -> UID and NDEF
read and verified) and the APDUs each read needed.
Baseline, measured in the same run on the same card and reader: a bare ``FF CA`` (get UID)
APDU round trip through pcscd. The ratio read / (APDUs x baseline) shows what the backend
adds on top of the APDU exchanges it cannot avoid.

Needs pcscd, vsmartcard-vpcd and pyscard (see .ci/pcsc.sh). Each tap waits for pcscd's
0.4 s presence poll, so a run takes about a second per tap.

    python bench/bench_pcsc.py [--taps 20]
"""

from __future__ import annotations

import argparse
import dataclasses
import queue
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from pos_loyalty.errors import ReaderError
from pos_loyalty.nfc import sun
from pos_loyalty.nfc.cardformat import member_card_ndef
from pos_loyalty.nfc.demo_keys import DEMO_ISSUER, demo_trust
from pos_loyalty.nfc.events import TapEvent
from pos_loyalty.nfc.reader import Reader
from pos_loyalty.nfc.sim.type4 import Ntag424Dna, PhoneCard
from pos_loyalty.nfc.sim.vcard import (
    IsoCard,
    StorageCard,
    VirtualCard,
    VirtualPcscStack,
    VpcdCardEmulator,
    ntag_memory,
)
from pos_loyalty.nfc.sunuri import sun_uri_verifier

META = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
FILE = bytes.fromhex("FFEEDDCCBBAA99887766554433221100")
BASE = "https://p.example/t"


def pct(samples: list[float]) -> tuple[float, float]:
    if len(samples) < 2:
        return samples[0], samples[0]
    qs = statistics.quantiles(samples, n=100)
    return qs[49], qs[98]


def bare_apdu_ms(reader_name: str, rounds: int = 200) -> list[float]:
    """Round trips of FF CA 00 00 00 through pcscd to the card currently on the reader."""
    import smartcard.scard as scard

    rc, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    _, names = scard.SCardListReaders(ctx, [])
    name = next(n for n in names if reader_name in n)
    rc, card, proto = scard.SCardConnect(ctx, name, scard.SCARD_SHARE_SHARED,
                                         scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1)
    if rc != scard.SCARD_S_SUCCESS:
        raise ReaderError(f"connect failed: {scard.SCardGetErrorMessage(rc)}")
    out = []
    try:
        for _ in range(rounds):
            t0 = time.perf_counter()
            rc, _resp = scard.SCardTransmit(card, proto, [0xFF, 0xCA, 0, 0, 0])
            out.append((time.perf_counter() - t0) * 1000)
    finally:
        scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
        scard.SCardReleaseContext(ctx)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--taps", type=int, default=20)
    args = ap.parse_args()
    uid = bytes.fromhex("04C1C2C3C4C5C6")
    cards: dict[str, VirtualCard] = {
        "NTAG213 member card": StorageCard(
            uid, ntag_memory(uid, member_card_ndef("M-1001", uid, DEMO_ISSUER))),
        "phone (Type 4)": IsoCard(PhoneCard(member_card_ndef(
            "M-1002", bytes.fromhex("08A1A2A3"), DEMO_ISSUER), uid=bytes.fromhex("08A1A2A3"))),
        "NTAG 424 DNA (SUN)": IsoCard(Ntag424Dna(
            BASE, META, FILE, file_data=sun.pack_file_data({"product": "4006381333931"}))),
    }
    keys = [sun.SunKeyEntry(BASE, "product", META, FILE)]
    with tempfile.TemporaryDirectory() as tmp:
        stack = VirtualPcscStack(Path(tmp))
        try:
            stack.start()
        except ReaderError as exc:
            sys.exit(f"cannot run: {exc}")
        try:
            events: queue.Queue[TapEvent] = queue.Queue()
            stop = threading.Event()
            trust = dataclasses.replace(
                demo_trust(), uri_verifiers=(sun_uri_verifier(keys, sun.MemoryCounterStore()),))
            reader = Reader(f"pcsc:{stack.reader}", trust=trust, debounce_s=0.0)
            thread = threading.Thread(target=reader.run, args=(events.put, stop))
            thread.start()
            with VpcdCardEmulator(stack.port) as slot:
                slot.insert(cards["NTAG213 member card"])
                events.get(timeout=10)
                base = bare_apdu_ms(stack.reader)
                slot.remove()
                b50, b99 = pct(base)
                print(f"baseline: bare FF CA APDU through pcscd p50 {b50:.3f} ms "
                      f"p99 {b99:.3f} ms ({len(base)} round trips)")
                for label, card in cards.items():
                    reads, apdus = [], []
                    for _ in range(args.taps):
                        before = slot.apdus
                        slot.insert(card)
                        event = events.get(timeout=10)
                        slot.remove()
                        assert event.verified, (label, event.reason)
                        reads.append(event.read_ms)
                        apdus.append(slot.apdus - before)
                    r50, r99 = pct(reads)
                    n = statistics.median(apdus)
                    print(f"{label:22s} read p50 {r50:6.2f} ms p99 {r99:6.2f} ms, "
                          f"{n:.0f} APDUs, {r50 / (n * b50):4.2f}x APDUs x baseline")
            stop.set()
            thread.join(timeout=10)
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
