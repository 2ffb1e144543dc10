"""``pos-loyalty demo``: the whole loop on simulated hardware, narrated as the till sees it.

Real code on every edge: the emulated card answers nfcpy's own reader over its ``udp``
driver, the till talks to the daemon through pyserial over a real pseudo-terminal pair,
the store is a SQLite file in a temporary directory.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pos_loyalty.config import TerminalConfig
from pos_loyalty.nfc.sim.base import EmulatedTag
from pos_loyalty.nfc.sim.cards import blank_tag, foreign_tag, member_card
from pos_loyalty.nfc.sim.emulator import TagEmulator
from pos_loyalty.pos.pty import PtyBridge
from pos_loyalty.pos.till import SimulatedTill
from pos_loyalty.terminal.daemon import TerminalDaemon
from pos_loyalty.terminal.demo_data import seed_demo_members

Echo = Callable[[str], None]
REMOVAL_SETTLE_S = 0.4
TAP_ANSWERS = {"member.identified", "member.unknown", "card.refused"}


@dataclass(frozen=True)
class DemoBasketLine:
    sku: str
    name: str
    qty: int
    unit_price: int
    category: str

    def as_message(self) -> dict[str, Any]:
        return {"sku": self.sku, "qty": self.qty, "unit_price": self.unit_price,
                "category": self.category}


BASKETS: tuple[tuple[DemoBasketLine, ...], ...] = (
    (DemoBasketLine("COF-01", "Flat white", 2, 350, "coffee"),
     DemoBasketLine("BAK-07", "Croissant", 1, 220, "bakery"),
     DemoBasketLine("BEA-12", "Coffee beans 250 g", 1, 1290, "retail")),
    (DemoBasketLine("COF-02", "Espresso", 1, 240, "coffee"),
     DemoBasketLine("BAK-03", "Cinnamon roll", 2, 310, "bakery")),
)


def money(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


class DemoRun:
    """One demo: the emulator, the pty pair, the daemon and the till, and the transcript."""

    def __init__(self, echo: Echo, workdir: Path, rf: TagEmulator, bridge: PtyBridge) -> None:
        self.echo = echo
        self.rf = rf
        config = TerminalConfig(
            terminal_id="T-DEMO", data_dir=workdir, reader_path=f"udp:127.0.0.1:{rf.port}",
            debounce_s=0.0, serial_port=bridge.terminal_path,
            db_url=f"sqlite:///{workdir / 'terminal.db'}", simulation=True,
        )
        self.daemon = TerminalDaemon(config)
        seed_demo_members(self.daemon.store)
        self.till = SimulatedTill(bridge.till_path, pos_id="POS-DEMO")
        self._thread = threading.Thread(target=self.daemon.run, name="terminal", daemon=True)
        self.txn_no = 0

    def start(self) -> None:
        self.daemon.start()
        self._thread.start()
        self.till.start()

    def close(self) -> None:
        self.till.close()
        self.daemon.stop()
        self._thread.join(timeout=10)

    def tap(self, label: str, tag: EmulatedTag) -> dict[str, Any]:
        """Present a tag until the till hears about it; return what the till got."""
        self.echo(f"\n[tap] {label}")
        # the previous card has just left the field; nfcpy's presence check needs ~0.3 s to
        # see that, as a real reader would, so the next customer steps up after it
        time.sleep(REMOVAL_SETTLE_S)
        started = time.perf_counter()
        self.rf.present(tag)
        try:
            msg = self.till.next_message(TAP_ANSWERS, timeout=10.0)
        finally:
            self.rf.remove()
        end_to_end = (time.perf_counter() - started) * 1000
        kind = msg["type"]
        if kind == "member.identified":
            tier = f" ({msg['tier']})" if msg.get("tier") else ""
            self.echo(f"  till> MEMBER {msg['name']}{tier}  card {msg['card_id']}  "
                      f"balance {msg['balance']} pts")
            for text in msg.get("discounts", []):
                self.echo(f"  till>   standing: {text}")
        elif kind == "member.unknown":
            self.echo(f"  till> UNKNOWN CARD {msg['card_id']}: {msg['reason']}")
        else:
            self.echo(f"  till> CARD REFUSED: {msg['reason']}")
        daemon_ms = msg.get("tap_ms")
        daemon_part = f", terminal-added {daemon_ms:.2f} ms" if daemon_ms is not None else ""
        self.echo(f"  latency: tap -> till {end_to_end:.1f} ms{daemon_part}")
        return msg

    def sale(self, lines: tuple[DemoBasketLine, ...]) -> dict[str, Any]:
        """Ring up a basket, show the quote, commit and show the points awarded."""
        self.txn_no += 1
        txn_id = f"TX-{self.txn_no:04d}"
        for line in lines:
            self.echo(f"  basket  {line.qty} x {line.name:<20} {money(line.unit_price):>7}")
        q = self.till.send_basket(txn_id, [line.as_message() for line in lines])
        self.echo(f"  quote   {q['summary']}  | total due {money(q['total_due'])}")
        result = self.till.commit(txn_id)
        if result["type"] == "error":
            self.echo(f"  till> ERROR {result['message']}")
            return result
        self.echo(f"  commit  {txn_id}: +{result['points']} pts, balance "
                  f"{result['balance_before']} -> {result['balance_after']}")
        return result


def run_demo(echo: Echo = print) -> int:
    """Run the scripted taps; 0 when every step gave the expected answer."""
    echo("pos-loyalty demo: emulated NFC over nfcpy udp, till over a pty, SQLite store")
    # the transcript is the output; library chatter (link closing, the demo-key warning)
    # would only clutter it
    logging.getLogger("pos_loyalty").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="pos-loyalty-demo-") as tmp, \
            TagEmulator() as rf, PtyBridge() as bridge:
        run = DemoRun(echo, Path(tmp), rf, bridge)
        run.start()
        try:
            first = run.tap("Ada's member card C-1001 (first visit)", member_card("C-1001"))
            sale1 = run.sale(BASKETS[0])
            second = run.tap("Ada's member card again (second visit)", member_card("C-1001"))
            sale2 = run.sale(BASKETS[1])
            unknown = run.tap("a genuine card not registered here (C-7777)",
                              member_card("C-7777"))
            blank = run.tap("a blank NTAG sticker", blank_tag())
            foreign = run.tap("another shop's card (foreign NDEF)", foreign_tag())
            ledger = run.daemon.store.ledger("M-1001")
        finally:
            run.close()
    echo("\nledger of M-1001: " + ", ".join(
        f"#{e.terminal_seq} {e.kind} {e.points:+d} ({e.txn_ref})" for e in ledger))
    ok = (
        first["type"] == "member.identified"
        and sale1.get("type") == "points.awarded"
        and second["type"] == "member.identified"
        and second["balance"] == sale1["balance_after"] > first["balance"]
        and sale2.get("type") == "points.awarded"
        and unknown["type"] == "member.unknown"
        and blank["type"] == foreign["type"] == "card.refused"
    )
    echo("\ndemo " + ("OK" if ok else "FAILED: an answer was not the expected one"))
    return 0 if ok else 1
