"""Sales made the way ``pos-loyalty run`` makes them: a tap, then till requests, handled by
the daemon's TerminalService on a real LocalStore (no store shortcut a till cannot take)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import update

from pos_loyalty.nfc.events import TapEvent
from pos_loyalty.pos.messages import Message, message_from_dict
from pos_loyalty.rules import MemberView
from pos_loyalty.rules.parse import parse_text
from pos_loyalty.rules.program import Program
from pos_loyalty.store.engine_state import encode_state
from pos_loyalty.store.local import LocalStore
from pos_loyalty.store.models import Member
from pos_loyalty.terminal.service import TerminalService

REDEEM_ONLY_TOML = '''
[program]
name = "Redeem only"
[redemption]
points = 100
value = 100
min_points = 1
max_percent = 100
'''
REDEEM_ONLY: Program = parse_text(REDEEM_ONLY_TOML)
"""A program that earns nothing and lets any points be redeemed at 1 pt = 0.01 (its program
file: ``REDEEM_ONLY_TOML``)."""


def member_tap(card_id: str) -> TapEvent:
    """A verified member card tap, as the reader hands it to the daemon."""
    return TapEvent(kind="member", uid="04A1B2C3D4E5F6", tag_type="NTAG213", card_id=card_id,
                    verified=True)


def ask(service: TerminalService, doc: dict[str, Any] | Message) -> dict[str, Any]:
    """One till request (a message, or the JSON object a till sends), answered as the JSON
    object the till gets."""
    msg = doc if isinstance(doc, Message) else message_from_dict(doc, "till", remote=False)
    reply = service.on_message(msg)
    assert reply is not None, doc
    return reply.to_dict()


def tap(service: TerminalService, event: TapEvent) -> dict[str, Any]:
    """What the till is sent for a tap, as its JSON object."""
    return service.on_tap(event).to_dict()


def ring_up(service: TerminalService, *, card_id: str | None, pos_id: str, txn_id: str,
            total: int, redeem: int = 0) -> dict[str, Any]:
    """Tap (if a card), basket of one line of ``total``, optional redemption, commit.

    Returns the till's last answer: ``points.awarded``, or the ``error`` that stopped it.
    """
    if card_id is not None:
        told = tap(service, member_tap(card_id))
        assert told["type"] == "member.identified", told
    quote = ask(service, {"type": "basket.update", "pos_id": pos_id, "txn_id": txn_id,
                                "lines": [{"sku": "ITEM", "qty": 1, "unit_price": total,
                                           "category": "misc"}]})
    if quote["type"] != "quote":
        return quote
    if redeem:
        quote = ask(service, {"type": "redeem.request", "pos_id": pos_id,
                                    "txn_id": txn_id, "points": redeem})
        if quote["type"] != "quote":
            return quote
    return ask(service, {"type": "txn.commit", "pos_id": pos_id, "txn_id": txn_id})


def seed_member_state(store: LocalStore, view: MemberView) -> None:
    """Give a member the engine state a test starts from (point lots, credits, stamps...),
    as earlier sales would have left it."""
    with store.engine.begin() as conn:
        done = conn.execute(update(Member).where(Member.member_id == view.member_id).values(
            tier=view.tier, birthday=view.birthday, state=encode_state(view))).rowcount
    assert done == 1, f"unknown member {view.member_id}"


_KILLED_TERMINAL = r"""
import sys
from datetime import datetime
from pos_loyalty.rules import DEFAULT_PROGRAM
from pos_loyalty.store.local import LocalStore
from pos_loyalty.sync.worker import SyncWorker
from pos_loyalty.terminal.service import TerminalService
from tests.tillsales import ask, ring_up, sale_total
url, server, cred, interval, batch, start, total = sys.argv[1:8]
local = LocalStore(url)
worker = SyncWorker(local, server, cred, interval_s=float(interval), batch=int(batch))
service = TerminalService(local, DEFAULT_PROGRAM, clock=lambda: datetime(2026, 6, 1))
worker.start()
for i in range(int(start), int(total)):
    # after a restart the till asks about the sale it was in; a committed one is done
    status = ask(service, {"type": "txn.status", "pos_id": "POS-1", "txn_id": f"T{i}"})
    if status["state"] != "committed":
        reply = ring_up(service, card_id="C1", pos_id="POS-1", txn_id=f"T{i}",
                        total=sale_total(i))
        assert reply["type"] == "points.awarded", reply
    worker.trigger()
    print(i, flush=True)
worker.stop()
"""


def sale_total(i: int) -> int:
    """The basket total of sale ``T{i}`` rung up by :func:`sell_through_kills`."""
    return 100 * (1 + i % 7)


def sell_through_kills(local_url: str, server_url: str, credential: str, *, total: int,
                       kills: int, seed: int, interval_s: float = 0.05,
                       batch: int = 100) -> None:
    """Sales T0..T{total-1} for card C1 by a terminal process (its own sync worker pushing
    as it sells) killed with SIGKILL ``kills`` times at random moments, each time started
    again where the till left off (repeating the commit that may have been in flight:
    idempotent per txn), then once more to the end."""
    rng = random.Random(seed)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    args = [sys.executable, "-c", _KILLED_TERMINAL, local_url, server_url, credential,
            str(interval_s), str(batch)]
    start = 0
    for _ in range(kills):
        child = subprocess.Popen([*args, str(start), str(total)], stdout=subprocess.PIPE,
                                 text=True, env=env)
        time.sleep(rng.uniform(0.8, 2.5))
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate()
        done = [int(x) for x in out.split()]
        start = done[-1] if done else start
    subprocess.run([*args, str(start), str(total)], capture_output=True, text=True,
                   env=env, check=True)
