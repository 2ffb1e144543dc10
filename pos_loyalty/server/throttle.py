"""Per-client throttle of failed attempts (enrollment codes): a sliding window, bounded.

Written here rather than taken from a rate-limit library because it is one small class with
one job: count a client's recent failures in memory, refuse it for the rest of the window
once it has too many, and never hold more than ``max_clients`` entries however many
addresses an attacker uses. Time is an argument (``now``), so tests need no sleeping.
"""

from __future__ import annotations

from collections import OrderedDict, deque


class FailureThrottle:
    """At most ``limit`` failures per client in any ``window_s`` seconds."""

    def __init__(self, limit: int, window_s: float, *, max_clients: int = 10_000) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_clients = max_clients
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._failures.get(client)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[client]
        return times

    def retry_after(self, client: str, now: float) -> float:
        """0 if ``client`` may try now, else the seconds until its oldest failure expires."""
        times = self._recent(client, now)
        if len(times) < self.limit:
            return 0.0
        return max(0.001, times[0] + self.window_s - now)

    def failed(self, client: str, now: float) -> None:
        times = self._recent(client, now)
        if client not in self._failures:
            self._failures[client] = times
            while len(self._failures) > self.max_clients:
                self._failures.popitem(last=False)
        self._failures.move_to_end(client)
        times.append(now)
