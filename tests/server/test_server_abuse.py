"""A server that holds under abuse: stalled connections, floods of garbage, code guessing.

All on 127.0.0.1 against a real uvicorn, bounded in connection count and time.
"""

from __future__ import annotations

import logging
import socket
import stat
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from pos_loyalty.server.app import create_app
from pos_loyalty.server.central import CentralStore
from pos_loyalty.server.config import Settings
from pos_loyalty.server.logs import EscapeControls, RateLimit
from pos_loyalty.server.runner import ServerThread
from tests.ports import ReservedPort

SQLITE_ONLY = pytest.mark.parametrize("central_url", ["sqlite"], indirect=True)


class Records(logging.Handler):
    """Counts what reaches the log handlers (after the loggers' own filters)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


def _server(central_url: str, **limits: Any) -> tuple[ServerThread, CentralStore]:
    store = CentralStore(central_url)
    settings = replace(Settings(db_url=central_url), **limits)
    app = create_app(settings, store=store, migrate=False)
    return ServerThread(app).start(), store


def _connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    return s


def _closed_by_server(s: socket.socket) -> bytes:
    """Read until the server closes; returns what it sent (b"" if it just hung up)."""
    data = b""
    s.settimeout(15)
    try:
        while chunk := s.recv(4096):
            data += chunk
    except ConnectionResetError:
        pass
    return data


@SQLITE_ONLY
class TestStalledConnections:
    def test_health_answers_with_300_stalled_connections_and_logs_stay_bounded(
            self, central_url: str, records: Records) -> None:
        """300 stalled clients (silent, half headers, half body) and 300 garbage requests:
        /v1/health still answers, every stalled one is cut at its deadline, the log is short."""
        srv, store = _server(central_url, header_timeout_s=2, body_timeout_s=2)
        try:
            with ExitStack() as stack:
                socks = []
                for i in range(300):
                    s = stack.enter_context(_connect(srv.port))
                    if i % 3 == 1:
                        s.sendall(b"POST /v1/enroll HTTP/1.1\r\nHost: x\r\n")
                    elif i % 3 == 2:
                        s.sendall(b"POST /v1/enroll HTTP/1.1\r\nHost: x\r\nContent-Type: "
                                  b"application/json\r\nContent-Length: 100\r\n\r\n{\"code\":")
                    socks.append(s)
                for _ in range(300):
                    with _connect(srv.port) as g:
                        g.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")
                        _closed_by_server(g)
                with httpx.Client(timeout=5) as client:
                    for _ in range(5):
                        r = client.get(f"{srv.url}/v1/health")
                        assert r.status_code == 200 and r.json()["status"] == "ok"
                answers = [_closed_by_server(s) for s in socks]
            silent = [a for i, a in enumerate(answers) if i % 3 != 2]
            assert silent == [b""] * 200  # closed at the header deadline, nothing sent
            bodies = [a for i, a in enumerate(answers) if i % 3 == 2]
            assert all(a.startswith(b"HTTP/1.1 408") for a in bodies), bodies[0][:100]
        finally:
            srv.stop()
            store.close()
        noisy = [r for r in records.records if r.name in ("uvicorn.error", "asyncio")]
        assert len(noisy) <= 30, [r.getMessage() for r in noisy[:5]]
        assert sum(1 for r in records.records if r.exc_info) <= 5

    def test_connections_over_the_limit_are_closed_at_once(self, central_url: str) -> None:
        """With the cap reached a new connection is closed; once one leaves, service resumes."""
        srv, store = _server(central_url, max_connections=20, header_timeout_s=30)
        try:
            with ExitStack() as stack:
                for _ in range(20):
                    stack.enter_context(_connect(srv.port))
                with _connect(srv.port) as extra:
                    extra.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
                    assert _closed_by_server(extra) == b""
            with httpx.Client(timeout=10) as client:
                assert client.get(f"{srv.url}/v1/health").status_code == 200
        finally:
            srv.stop()
            store.close()


@SQLITE_ONLY
class TestEnrollmentThrottle:
    def test_wrong_codes_from_one_address_are_throttled(self, central_url: str) -> None:
        """After 3 wrong codes an address gets 429 with Retry-After, even with the right code;
        another address is unaffected."""
        srv, store = _server(central_url, enroll_failures=3, enroll_window_s=60)
        try:
            _tid, code = store.add_terminal("S1")
            url = f"{srv.url}/v1/enroll"
            for _ in range(3):
                assert httpx.post(url, json={"code": "WRONG-CODE"}).status_code == 403
            r = httpx.post(url, json={"code": code})
            assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
            assert "too many" in r.json()["reason"]
            other = httpx.HTTPTransport(local_address="127.0.0.2")
            with httpx.Client(transport=other) as client:
                assert client.post(url, json={"code": code}).status_code == 200
        finally:
            srv.stop()
            store.close()


class TestLogHygiene:
    def test_control_characters_are_escaped(self) -> None:
        """A client-supplied string cannot start a new log line or send terminal escapes."""
        rec = logging.LogRecord("pos_loyalty.server", logging.WARNING, __file__, 1,
                                "refused %s: %s", ("T-1\nFAKE ok", "\x1b[2J"), None)
        EscapeControls().filter(rec)
        assert rec.getMessage() == "refused T-1\\nFAKE ok: \\x1b[2J"

    def test_rate_limit_keeps_a_burst_then_counts_what_it_dropped(self) -> None:
        """Per call site: a burst passes, the rest is dropped and counted in the next line."""
        now = [0.0]
        limit = RateLimit(burst=3, window_s=10, clock=lambda: now[0])

        def rec() -> logging.LogRecord:
            return logging.LogRecord("asyncio", logging.ERROR, "x.py", 7, "accept failed",
                                     None, None)

        passed = [limit.filter(rec()) for _ in range(1000)]
        assert passed.count(True) == 3
        now[0] = 11.0
        later = rec()
        assert limit.filter(later)
        assert "997 similar messages suppressed" in later.getMessage()


class TestDataAtRest:
    def test_central_sqlite_file_is_owner_only(self, tmp_path: Path) -> None:
        """The central database and its WAL are created 0600 whatever the umask."""
        import os

        old = os.umask(0o022)
        try:
            db = tmp_path / "c.db"
            store = CentralStore(f"sqlite:///{db}")
            from pos_loyalty.migrations import upgrade_central

            upgrade_central(store.url)
            store.add_member("M1", "Ann")
            for path in (db, tmp_path / "c.db-wal"):
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
            store.close()
        finally:
            os.umask(old)


@pytest.mark.slow(seconds=10)
class TestFileDescriptorLimit:
    def test_connections_beyond_a_low_fd_limit_never_reach_accept_errors(
            self, tmp_path: Path, reserved_port: ReservedPort) -> None:
        """A server process whose hard open-file limit is 1024 caps connections below it:
        900 clients get closed connections, not accept() failures, the log stays short, and
        it serves again as soon as they leave."""
        import os
        import resource
        import subprocess
        import sys
        import time

        from tests.conftest import REPO

        def low_limit() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))

        port = reserved_port.port  # the server process binds it too (SO_REUSEADDR)
        env = dict(os.environ, PYTHONPATH=str(REPO))
        proc = subprocess.Popen(
            [sys.executable, "-m", "pos_loyalty", "server", "--port", str(port), "--db",
             f"sqlite:///{tmp_path / 'c.db'}"], env=env, preexec_fn=low_limit,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        url = f"http://127.0.0.1:{port}/v1/health"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(url, timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert proc.poll() is None and time.monotonic() < deadline, "server down"
                time.sleep(0.2)
            with ExitStack() as stack:
                socks = [stack.enter_context(_connect(port)) for _ in range(900)]
                over = [s for s in socks[704:] if _closed_by_server(s) == b""]
                assert len(over) == 900 - 704
            with httpx.Client(timeout=10) as client:
                assert client.get(url).status_code == 200
        finally:
            proc.terminate()
            _out, err = proc.communicate(timeout=20)
        assert "Traceback" not in err and "Too many open files" not in err
        assert "allows 704 connections" in err
        assert len(err.splitlines()) < 60, err[-2000:]
