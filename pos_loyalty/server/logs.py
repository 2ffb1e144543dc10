"""Log hygiene for the server: outside text cannot forge log lines, floods cannot fill disks.

- :class:`EscapeControls` rewrites every string argument of a record so control characters
  (CR, LF, ESC, ...) appear escaped (``\\n``, ``\\x1b``): an id or reason sent by a client
  cannot start a fake log line or drive a terminal.
- :class:`OneLine` folds asyncio's tracebacks (``accept()`` out of descriptors, a reset
  transport) into one line each.
- :class:`RateLimit` lets at most ``burst`` records of one call site through per
  ``window_s`` seconds and then one line saying how many it dropped: a storm of accept
  errors or bad requests writes a few lines, not hundreds of megabytes of tracebacks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F)}
_CONTROLS.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})


def escape_controls(text: str) -> str:
    return text.translate(_CONTROLS)


class EscapeControls(logging.Filter):
    """Escape control characters in a record's message and string arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = escape_controls(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(escape_controls(a) if isinstance(a, str) else a
                                for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: escape_controls(v) if isinstance(v, str) else v
                           for k, v in record.args.items()}
        return True


class OneLine(logging.Filter):
    """Fold a record's traceback into one line ("accept failed: OSError: [Errno 24] ...")."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            record.msg = f"{record.getMessage()}: {type(exc).__name__}: {exc}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


class RateLimit(logging.Filter):
    """At most ``burst`` records per call site (logger, file, line) per window."""

    def __init__(self, burst: int = 10, window_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.burst = burst
        self.window_s = window_s
        self.clock = clock
        self._lock = threading.Lock()
        self._sites: dict[tuple[str, str, int], list[float]] = {}  # [window start, n, dropped]

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.pathname, record.lineno)
        now = self.clock()
        with self._lock:
            site = self._sites.get(key)
            if site is None or now - site[0] >= self.window_s:
                dropped = int(site[2]) if site else 0
                if len(self._sites) > 1000:
                    self._sites.clear()
                self._sites[key] = [now, 1, 0]
                if dropped:
                    record.msg = f"{record.msg} ({dropped} similar messages suppressed)"
                return True
            site[1] += 1
            if site[1] <= self.burst:
                return True
            site[2] += 1
            return False


_installed = False


def install() -> None:
    """Attach the filters to the loggers that carry outside input (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    for name in ("pos_loyalty.server", "uvicorn.error", "uvicorn.access", "asyncio"):
        logger = logging.getLogger(name)
        logger.addFilter(EscapeControls())
        if name == "asyncio":  # accept() and transport errors: no traceback needed
            logger.addFilter(OneLine())
        if name != "uvicorn.access":  # one line per request is the access log's job
            logger.addFilter(RateLimit())
