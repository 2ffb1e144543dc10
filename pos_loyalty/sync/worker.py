"""SyncWorker: the terminal daemon's background sync thread.

Runs a sync round every ``interval_s``, or sooner when a sale calls :meth:`trigger`. After a
failed round it retries by itself, with exponential backoff and full jitter (so a chain's
terminals do not all retry at the same instant when central comes back), capped; a trigger
during that wait is ignored, so a busy till never turns an outage into a retry storm or runs
the failure count up to the cap. ``start`` and ``stop`` return promptly and a tap never
waits for it: the worker writes to the local store only in short transactions of its own.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from datetime import datetime

from pos_loyalty.errors import LoyaltyError, SyncError
from pos_loyalty.store.local import LocalStore
from pos_loyalty.sync.client import (
    Status,
    SyncClient,
    SyncReport,
    heartbeat_body,
    run_sync,
    utcnow,
)

log = logging.getLogger("pos_loyalty.sync")
BACKOFF_CAP_S = 60.0
"""Longest wait between retries: central back for a minute has every terminal syncing."""


def backoff_delay(failures: int, *, base_s: float, cap_s: float,
                  rand: Callable[[], float] = random.random) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**(failures-1))]."""
    if failures <= 0:
        return 0.0
    ceiling: float = min(cap_s, base_s * 2.0 ** min(failures - 1, 30))
    return rand() * ceiling


class SyncWorker:
    """Push the outbox and pull deltas in a background thread, retrying with backoff."""

    def __init__(self, store: LocalStore, url: str, credential: str, interval_s: float, *,
                 batch: int = 1000, page: int = 5000, backoff_base_s: float = 1.0,
                 backoff_cap_s: float = BACKOFF_CAP_S,
                 jitter: Callable[[], float] = random.random,
                 status: Status | None = None, ca_file: str | None = None) -> None:
        self.store = store
        self.url = url
        self.interval_s = interval_s
        self.batch = batch
        self.page = page
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self._jitter = jitter
        self._credential = credential
        self._ca_file = ca_file
        self._client = SyncClient(url, credential, ca_file=ca_file)
        self._lock = threading.Lock()  # one round at a time (thread or a direct sync_once)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.failures = 0
        self.last_report: SyncReport | None = None
        self.last_ok_at: datetime | None = None
        self.status = status  # the daemon's state for the heartbeat

    def start(self) -> None:
        """Start the background thread (returns at once; idempotent)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sync-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to finish its current request and exit; close the HTTP client."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._client.close()

    def trigger(self) -> None:
        """Sync soon (e.g. after a sale) instead of waiting for the interval.

        Ignored while backing off after a failure: the retry comes when the backoff says.
        """
        self._wake.set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def sync_once(self) -> SyncReport:
        """One round now, in the caller's thread; never raises for a failed round."""
        with self._lock:
            if self._client.is_closed:
                self._client = SyncClient(self.url, self._credential, ca_file=self._ca_file)
            try:
                report = run_sync(self.store, self._client, batch=self.batch, page=self.page)
            except SyncError as exc:
                report = SyncReport(ok=False, error=exc.reason)
            except LoyaltyError as exc:  # the local store refused: keep going, say why
                report = SyncReport(ok=False, error=str(exc))
            if report.held or report.conflicts:
                log.warning("central held %d and answered %d conflicts: %s", report.held,
                            report.conflicts, "; ".join(report.problems[:5]))
            if report.ok:
                self.last_ok_at = utcnow()
            self._heartbeat(report)
            self.last_report = report
            return report

    def _heartbeat(self, report: SyncReport) -> None:
        """Tell central how this terminal is, after every round (a failed one too: central
        may be reachable though it refused the push). A heartbeat that fails is logged at
        debug level only: the round's own error already says why."""
        try:
            body = heartbeat_body(self.store, report, self.last_ok_at, self.status)
            self._client.heartbeat(body)
        except LoyaltyError as exc:
            log.debug("heartbeat not sent: %s", exc)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()  # a trigger from before this round is served by it
            report = self.sync_once()
            if report.ok:
                self.failures = 0
                self._wake.wait(self.interval_s)
                continue
            self.failures += 1
            delay = max(0.05, backoff_delay(self.failures, base_s=self.backoff_base_s,
                                            cap_s=self.backoff_cap_s, rand=self._jitter))
            log.warning("sync failed (%d in a row), retrying in %.1f s: %s",
                        self.failures, delay, report.error)
            self._stop.wait(delay)  # only stop() ends a backoff early, never a sale
