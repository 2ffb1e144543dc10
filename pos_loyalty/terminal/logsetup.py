"""Logging for ``pos-loyalty run``: one readable line per event, or one JSON object per line.

Store IT reads the text form in a terminal or ``journalctl``; ``--log-format json`` gives log
shippers one object per line (time, level, logger, message, and the traceback when there is
one). Library chatter (httpx's request lines, alembic's migration steps, nfcpy's device
search) is kept to warnings unless ``-v`` asks for everything.

The JSON formatter is the stdlib's ``json`` over the record's own fields: twenty lines,
not worth a dependency.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Final, Literal

LogFormat = Literal["text", "json"]
QUIET_LIBRARIES: Final = ("httpx", "httpcore", "alembic", "nfc", "urllib3")
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``msg``,
    ``thread`` and, for an exception, ``exc`` (the formatted traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "thread": record.threadName,
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def configure_logging(*, verbose: bool = False, fmt: LogFormat = "text") -> None:
    """Root logging for the daemon: INFO (DEBUG with ``verbose``) to stderr, libraries at
    WARNING unless ``verbose``."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.WARNING)
    if not verbose:  # nfcpy sets its own logger to INFO when it is first imported, which
        handler.addFilter(_quiet_libraries)  # may be after this: filter at the handler too


def _quiet_libraries(record: logging.LogRecord) -> bool:
    """False for a library's record below WARNING."""
    if record.levelno >= logging.WARNING:
        return True
    name = record.name
    return not any(name == lib or name.startswith(lib + ".") for lib in QUIET_LIBRARIES)
