"""The till's coupon: time the terminal takes to answer coupon.present, beside basket.update.

A live central (uvicorn on loopback, SQLite) holds N fresh coupons; an enrolled terminal
service (the daemon's own TerminalService, its SQLite store) answers, per sale:

- ``basket``: ``basket.update`` (the rules engine and the store, no network): the baseline;
- ``coupon``: ``coupon.present``: the HTTP call to central's redeem endpoint (one
  conditional update there), the coupon kept in the terminal's store, the sale quoted again;
- ``offline``: ``coupon.present`` with central out of reach (a closed port: connection
  refused), taken within the offline bounds.

The till's reply timer is 5 s and the terminal waits at most 2 s for central; the figures say
how far inside that a coupon is answered.

    python bench/bench_coupon.py [--sales 300]
"""

from __future__ import annotations

import argparse
import logging
import socket
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pos_loyalty.config import PhoneTill  # noqa: E402
from pos_loyalty.migrations import upgrade_central, upgrade_terminal  # noqa: E402
from pos_loyalty.pos.messages import (  # noqa: E402
    BasketItem,
    BasketUpdate,
    CouponPresent,
    Message,
    QuoteReply,
)
from pos_loyalty.server.app import create_app  # noqa: E402
from pos_loyalty.server.central import CentralStore  # noqa: E402
from pos_loyalty.server.config import Settings  # noqa: E402
from pos_loyalty.server.phone.queries import new_coupon_code  # noqa: E402
from pos_loyalty.server.runner import ServerThread  # noqa: E402
from pos_loyalty.store import LocalStore  # noqa: E402
from pos_loyalty.store.central_models import PhoneCoupon  # noqa: E402
from pos_loyalty.sync.client import SyncClient  # noqa: E402
from pos_loyalty.terminal.service import TerminalService  # noqa: E402

LINES = (BasketItem("KETTLE-2", 1, 4990, "kitchen"), BasketItem("MUG-1", 2, 1200, "kitchen"))


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def timed(service: TerminalService, msg: Message, sink: list[float]) -> None:
    """One request answered by the service, its time in ms added to ``sink``."""
    t0 = time.perf_counter()
    reply = service.on_message(msg)
    sink.append((time.perf_counter() - t0) * 1000)
    assert reply is not None and isinstance(reply, QuoteReply), reply


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sales", type=int, default=300)
    n = ap.parse_args().sales
    logging.getLogger("pos_loyalty").setLevel(logging.ERROR)  # one line per offline coupon
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'central.db'}"
        upgrade_central(url)
        central = CentralStore(url)
        now = central.clock()
        codes = [new_coupon_code() for _ in range(n)]
        central.write(lambda conn: conn.execute(central.insert(PhoneCoupon), [
            {"code": c, "uid": f"04{i:012X}", "sku": "KETTLE-2", "percent": 10,
             "issued_at": now, "expires_at": datetime(2099, 1, 1), "redeemed_at": None,
             "redeemed_by": None, "redeemed_txn": None} for i, c in enumerate(codes)]))
        _tid, enroll = central.add_terminal("S-1")
        app = create_app(Settings(db_url=url), store=central, migrate=False)
        local_url = f"sqlite:///{Path(tmp) / 'terminal.db'}"
        upgrade_terminal(local_url)
        store = LocalStore(local_url)
        basket: list[float] = []
        coupon: list[float] = []
        offline: list[float] = []
        with ServerThread(app) as srv:
            with SyncClient(srv.url) as anon:
                answer = anon.enroll(enroll)
            store.set_enrollment(server_url=srv.url, terminal_id=answer["terminal_id"],
                                 store_id="S-1", credential=answer["credential"])
            service = TerminalService(store, phone=PhoneTill(offline_coupons_per_day=n))
            try:
                for i, code in enumerate(codes):
                    txn = f"T-{i}"
                    timed(service, BasketUpdate("POS-1", txn, LINES, None), basket)
                    timed(service, CouponPresent("POS-1", txn, code), coupon)
                    service.on_message(BasketUpdate("POS-1", txn, (), None))  # keep it small
                store.set_enrollment(server_url=f"http://127.0.0.1:{closed_port()}",
                                     terminal_id=answer["terminal_id"], store_id="S-1",
                                     credential=answer["credential"])
                for i in range(n):
                    txn = f"O-{i}"
                    service.on_message(BasketUpdate("POS-1", txn, LINES, None))
                    timed(service, CouponPresent("POS-1", txn, new_coupon_code()), offline)
            finally:
                service.coupons.close()
                store.close()
        central.close()
    print(f"coupon.present at the terminal, {n} sales, live central on loopback (SQLite)")
    print(f"{'':10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, xs in (("basket", basket), ("coupon", coupon), ("offline", offline)):
        print(f"{name:10} {statistics.median(xs):8.2f} {pct(xs, 0.99):8.2f} {max(xs):8.2f}")
    print("the till's reply timer: 5000 ms; the terminal waits for central at most 2000 ms")


if __name__ == "__main__":
    main()
