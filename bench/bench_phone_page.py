"""P9: the page a product tag opens, server time per request and page weight.

A live central server (uvicorn on loopback) on SQLite and on PostgreSQL serves the example
catalog. Each request's server time is measured inside the server, by a timing ASGI
middleware from the moment the request reaches the app to its last body byte handed to
uvicorn. Measured in the same run:

- ``health``: ``GET /v1/health`` (no database, no template): the framework's floor, the baseline;
- ``genuine``: a fresh NTAG 424 DNA SUN URL of one of many tags: SUN verification with the
  tag's diversified key, the conditional counter upsert in ``sun_counters``, the tap row, the
  coupon, the page rendered;
- ``replayed``: the same URLs again (counter refused, no coupon);
- ``signed``: a static signed NTAG21x URL (Ed25519 check).

Page weight: the HTML of a genuine tap plus the stylesheet (images apart). Target: server p99
< 20 ms including SUN verification and the counter update; page < 50 KB before images.

    python bench/bench_phone_page.py [--requests 2000] [--no-pg]

Uses POS_LOYALTY_PG_URL if set, else a throwaway cluster (tests/pg.py).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pos_loyalty.migrations import upgrade_central  # noqa: E402
from pos_loyalty.nfc.cardformat import product_tag_uri  # noqa: E402
from pos_loyalty.server.app import create_app  # noqa: E402
from pos_loyalty.server.central import CentralStore  # noqa: E402
from pos_loyalty.server.config import Settings  # noqa: E402
from pos_loyalty.server.runner import ServerThread  # noqa: E402
from tests.pg import PgDatabases, PgUnavailable, pg_server  # noqa: E402
from tests.phone.conftest import ISSUER, SKU, phone_config, product_tag  # noqa: E402


class Timing:
    """ASGI middleware: server time of each request, keyed by the label its path gets."""

    def __init__(self, app: Any, sink: list[tuple[str, float]],
                 label: Callable[[str, str], str]) -> None:
        self.app = app
        self.sink = sink
        self.label = label

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()

        async def timed_send(message: Any) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.sink.append((self.label(scope["path"], scope["query_string"].decode()),
                                  time.perf_counter() - t0))

        await self.app(scope, receive, timed_send)


def _label(path: str, query: str) -> str:
    return path if not path.startswith("/p/") else query.split("=", 1)[0]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def run(db_url: str, n: int, catalog: Path) -> dict[str, list[float]]:
    samples: list[tuple[str, float]] = []
    store = CentralStore(db_url)
    config = phone_config(catalog, taps_per_client=10_000_000, taps_per_tag=10_000_000)
    app = create_app(Settings(db_url=db_url, phone=config), store=store, migrate=False)
    app.add_middleware(Timing, sink=samples, label=_label)
    tags = [product_tag(bytes.fromhex(f"04BE{i:010X}")) for i in range(n)]
    urls = []
    for tag in tags:
        tag.activated()
        tag.file_read(b"\xe1\x04")
        assert tag.last_url is not None
        urls.append(tag.last_url.replace("https://shop.example", ""))
    signed = product_tag_uri(SKU, bytes.fromhex("04112233445566"), ISSUER,
                             "https://shop.example").replace("https://shop.example", "")
    weight = 0
    with ServerThread(app) as srv, httpx.Client(base_url=srv.url) as http:
        for _ in range(50):  # warm up: connection, template compilation, catalog cache
            http.get("/v1/health")
            http.get(signed)
        samples.clear()
        for i, url in enumerate(urls):
            http.get("/v1/health")
            page = http.get(url)
            assert "Genuine product" in page.text, page.text[:300]
            if i == 0:
                css = http.get("/static/web/web.css")
                weight = len(page.content) + len(css.content)
        for url in urls:
            assert "used before" in http.get(url).text
        for _ in range(n):
            http.get(signed)
    store.close()
    out: dict[str, list[float]] = {}
    for label, seconds in samples:
        name = {"/v1/health": "health", "picc_data": "genuine", "u": "signed"}.get(label, label)
        out.setdefault(name, []).append(seconds)
    genuine = out.pop("genuine")
    out["genuine"], out["replayed"] = genuine[:n], genuine[n:]
    out["weight"] = [float(weight)]
    return out


def report(name: str, figures: dict[str, list[float]]) -> None:
    base = figures["health"]
    print(f"\n{name}")
    print(f"  {'request':10} {'n':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'p99/baseline':>13}")
    for key in ("health", "genuine", "replayed", "signed"):
        v = figures[key]
        print(f"  {key:10} {len(v):>6} {statistics.median(v) * 1000:>8.2f} {pct(v, 0.99):>8.2f} "
              f"{max(v) * 1000:>8.2f} {pct(v, 0.99) / pct(base, 0.99):>12.1f}x")
    p99 = pct(figures["genuine"], 0.99)
    print(f"  genuine tap p99 {p99:.2f} ms (target < 20 ms): {'ok' if p99 < 20 else 'MISSED'}")
    weight = int(figures["weight"][0])
    print(f"  page weight before images: {weight} bytes (HTML + CSS; target < 50 KB): "
          f"{'ok' if weight < 50_000 else 'MISSED'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--no-pg", action="store_true", help="SQLite only")
    args = ap.parse_args()
    catalog = REPO / "examples" / "catalog"
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'central.db'}"
        upgrade_central(url)
        report("SQLite", run(url, args.requests, catalog))
    if args.no_pg:
        return
    try:
        with pg_server() as server_url:
            dbs = PgDatabases(server_url)
            url = dbs.create()
            try:
                report("PostgreSQL", run(url, args.requests, catalog))
            finally:
                dbs.drop(url)
                dbs.close()
    except PgUnavailable as exc:
        print(f"\nPostgreSQL skipped: {exc}")


if __name__ == "__main__":
    main()
