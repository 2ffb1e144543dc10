"""Online redemption, terminal side: ask central, within a deadline, to confirm and hold.

The till's reply timer is 5 s (``pos_loyalty.pos.till.REPLY_TIMEOUT``); a redemption asks
central for at most ``deadline_s`` (1 s by default) and, when central does not answer in
time (down, slow, refusing the credential, answering nonsense), says so with ``None`` so the
caller falls back to the offline policy. A request cut off by the deadline may still reach
central and hold points; the sale then redeems offline under an event id of its own, so such
a late confirmation is released as soon as it arrives (and would expire at central anyway).
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from pos_loyalty.errors import SyncError
from pos_loyalty.sync.client import SyncClient

log = logging.getLogger("pos_loyalty.sync")

DEADLINE_S = 1.0
"""Longest a redemption waits for central before the offline policy decides it."""


@dataclass(frozen=True)
class Confirmation:
    """Central's answer: ``confirmed`` (the points are held under ``hold_id``) or refused
    with a cashier-readable ``reason``; ``available`` is what the member may still spend."""

    hold_id: str
    confirmed: bool
    points: int
    available: int
    reason: str = ""


class OnlineRedeem:
    """Confirms redemptions with central for one terminal credential, never for longer
    than ``deadline_s``; releases holds in the background."""

    def __init__(self, base_url: str, credential: str, *, deadline_s: float = DEADLINE_S,
                 ca_file: str | None = None) -> None:
        self.deadline_s = deadline_s
        # the future's deadline bounds the caller's wait; the request itself may go on in
        # the pool for a while, so that a late confirmation is seen and released
        self._client = SyncClient(base_url, credential, timeout=max(5.0, deadline_s * 2),
                                  ca_file=ca_file)
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="redeem-online")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    def confirm(self, *, hold_id: str, member_id: str, points: int, txn_ref: str,
                replaces: str | None = None) -> Confirmation | None:
        """Central's decision, or None when it did not give one within the deadline.
        ``replaces``: the sale's earlier hold, released by central if this is confirmed."""
        fut = self._pool.submit(self._client.redeem_hold, hold_id, member_id, points,
                                txn_ref[:140], replaces)
        answer = self._wait(fut, f"confirming {points} pts for {member_id}")
        if answer is None:
            fut.add_done_callback(lambda late: self._release_late(late, hold_id))
            return None
        try:
            status = answer["status"]
            got = Confirmation(str(answer["hold_id"]), status == "confirmed",
                               int(answer["points"]), int(answer["available"]),
                               str(answer.get("reason", ""))[:200])
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("online redemption: central's answer is malformed (%r): offline "
                        "policy decides", exc)
            return None
        if got.hold_id != hold_id or status not in ("confirmed", "refused"):
            log.warning("online redemption: central answered another request: offline "
                        "policy decides")
            return None
        return got

    def release(self, hold_id: str) -> Future[Any]:
        """Give the hold's points back (its sale was voided or its redemption changed),
        in the background: a hold central never hears of expires on its own."""
        return self._pool.submit(self._release, hold_id)

    def _release_late(self, late: Future[dict[str, Any]], hold_id: str) -> None:
        """A request that outlived the deadline: the sale went on without it, so a hold it
        may have made is given back (a confirmation that arrived late, or a request whose
        answer was lost: central may hold the points all the same)."""
        if late.cancelled():
            return  # never sent
        if late.exception() is not None or late.result().get("status") == "confirmed":
            self.release(hold_id)

    def _release(self, hold_id: str) -> None:
        try:
            self._client.redeem_release(hold_id)
        except SyncError as exc:
            log.info("hold %s not released now (%s); central lets it expire", hold_id,
                     exc.reason)

    def _wait(self, fut: Future[dict[str, Any]], what: str) -> dict[str, Any] | None:
        try:
            return fut.result(timeout=self.deadline_s)
        except FutureTimeout:
            log.warning("online redemption: central gave no answer within %.1f s while %s: "
                        "offline policy decides", self.deadline_s, what)
        except SyncError as exc:
            log.warning("online redemption: %s: offline policy decides", exc.reason)
        return None
