"""SUN verification cost on the tap path, against the bare AES work it has to do.

Measures, over generated NTAG 424 DNA messages with 32 bytes of encrypted file data:

* ``verify_sun`` (decrypt PICC data, derive the session MAC and ENC keys, MAC, decrypt),
* ``check_sun_uri`` (the same from the URL text, key lookup, file data parsing),
* the baseline: the same AES operations called directly on ``cryptography`` in this run
  (one CBC decrypt, three CMACs, one ECB block, one CBC decrypt), with no parsing or checks.

Prints p50/p99 in microseconds and the ratios to the baseline. The SUN check runs inside the
daemon-added tap latency (P1: p99 < 2 ms), so it should stay a small fraction of that.

    python bench/bench_sun.py [--messages 5000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from pos_loyalty.nfc import sun

META = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
FILE = bytes.fromhex("FFEEDDCCBBAA99887766554433221100")
BASE = "https://p.example/t"


def percentiles(samples: list[float]) -> tuple[float, float]:
    qs = statistics.quantiles(samples, n=100)
    return qs[49], qs[98]


def bare_aes(picc: bytes, enc: bytes, mac_input: bytes) -> bytes:
    """The AES work of one SUN check, with none of the checks around it."""
    d = Cipher(algorithms.AES(META), modes.CBC(bytes(16))).decryptor()
    plain = d.update(picc) + d.finalize()
    sv = b"\x3c\xc3\x00\x01\x00\x80" + plain[1:11] + bytes(6)
    keys = []
    for prefix in (b"\x3c\xc3", b"\xc3\x3c"):
        c = CMAC(algorithms.AES(FILE))
        c.update(prefix + sv[2:])
        keys.append(c.finalize())
    m = CMAC(algorithms.AES(keys[0]))
    m.update(mac_input)
    m.finalize()
    e = Cipher(algorithms.AES(keys[1]), modes.ECB()).encryptor()
    iv = e.update(plain[8:11] + bytes(13)) + e.finalize()
    d2 = Cipher(algorithms.AES(keys[1]), modes.CBC(iv)).decryptor()
    return d2.update(enc) + d2.finalize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--messages", type=int, default=5000)
    args = ap.parse_args()
    data = sun.pack_file_data({"product": "4006381333931", "lot": "2027-07"})
    keys = [sun.SunKeyEntry(BASE, "product", META, FILE)]
    msgs = [sun.generate_sun(META, FILE, b"\x04" + os.urandom(6), i + 1, file_data=data)
            for i in range(args.messages)]
    urls = [m.url(BASE) for m in msgs]

    timings: dict[str, list[float]] = {"baseline (bare AES)": [], "verify_sun": [],
                                       "check_sun_uri": []}
    for msg, url in zip(msgs, urls, strict=True):
        assert msg.enc is not None
        mac_input = sun.url_mac_input(msg.enc)
        t0 = time.perf_counter()
        bare_aes(msg.picc, msg.enc, mac_input)
        t1 = time.perf_counter()
        res = sun.verify_sun(META, FILE, msg.picc, msg.cmac, enc=msg.enc, mac_input=mac_input)
        t2 = time.perf_counter()
        ident = sun.check_sun_uri(url, keys)
        t3 = time.perf_counter()
        assert res.valid and ident.verified
        timings["baseline (bare AES)"].append((t1 - t0) * 1e6)
        timings["verify_sun"].append((t2 - t1) * 1e6)
        timings["check_sun_uri"].append((t3 - t2) * 1e6)

    base50, base99 = percentiles(timings["baseline (bare AES)"])
    print(f"{args.messages} SUN messages with 32 bytes of encrypted file data")
    for name, samples in timings.items():
        p50, p99 = percentiles(samples)
        print(f"  {name:22s} p50 {p50:7.1f} us  p99 {p99:7.1f} us  "
              f"({p50 / base50:4.2f}x / {p99 / base99:4.2f}x baseline)")
    p99 = percentiles(timings["check_sun_uri"])[1]
    print(f"check_sun_uri p99 = {p99 / 1000:.3f} ms = {p99 / 20:.1f}% of the 2 ms P1 budget")


if __name__ == "__main__":
    main()
