"""systemd notification (READY=1, WATCHDOG=1) for hardware/pos-loyalty.service, stdlib only.

The unit runs with ``Type=notify`` and ``WatchdogSec=``: the daemon calls :func:`notify`
``("READY=1")`` once it is serving, and runs a :class:`Watchdog` whose ``healthy`` callback says
whether its loops still make progress (e.g. ``Reader.heartbeat_age() < 5``). When it stops
being healthy the pings stop and systemd restarts the service, which also closes and reopens
the reader. Outside systemd (no ``$NOTIFY_SOCKET``) everything here does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


def notify(state: str, *, env: dict[str, str] | None = None) -> bool:
    """Send one sd_notify message; False (and nothing sent) when not under systemd."""
    path = (env if env is not None else dict(os.environ)).get("NOTIFY_SOCKET", "")
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(state.encode("utf-8"), address)
    except OSError as exc:
        log.warning("sd_notify %r failed: %s", state, exc)
        return False
    return True


def watchdog_interval(env: dict[str, str] | None = None) -> float | None:
    """Half of systemd's WatchdogSec (from $WATCHDOG_USEC), or None if no watchdog is set."""
    e = env if env is not None else dict(os.environ)
    usec = e.get("WATCHDOG_USEC", "")
    pid = e.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2e6


class Watchdog:
    """Pings WATCHDOG=1 every half watchdog period while ``healthy()`` is True."""

    def __init__(self, healthy: Callable[[], bool], *, env: dict[str, str] | None = None,
                 interval: float | None = None) -> None:
        self._healthy = healthy
        self._env = env
        self.interval = interval if interval is not None else watchdog_interval(env)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.pings = 0

    def start(self) -> None:
        """Start pinging (no thread at all when systemd set no watchdog)."""
        if self.interval is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="sd-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        assert self.interval is not None
        while not self._stop.wait(self.interval):
            try:
                ok = self._healthy()
            except Exception:
                log.exception("watchdog health check failed")
                ok = False
            if ok and notify("WATCHDOG=1", env=self._env):
                self.pings += 1
            elif not ok:
                log.warning("unhealthy: not pinging the systemd watchdog")
