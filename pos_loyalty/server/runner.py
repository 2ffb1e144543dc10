"""Run the app under uvicorn, in the foreground (CLI) or in a thread (tests, benches).

uvicorn is run with :class:`GuardedH11Protocol`, its h11 protocol plus what a server facing
untrusted clients needs and uvicorn does not do by itself:

- a connection must deliver complete request headers within ``header_timeout_s`` of opening
  (or of its previous answer), else it is closed: stalled or trickling clients cannot pile
  up (the body deadline is the ASGI middleware's, see ``app.BodyLimit``);
- at most ``max_connections`` open at once; one more is closed as soon as it is accepted,
  so file descriptors never run out (the soft RLIMIT_NOFILE is raised to fit);
- ``TCP_NODELAY`` on every accepted socket, so a small answer on a keep-alive connection is
  not held back by Nagle's algorithm waiting for the peer's delayed ACK.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from pos_loyalty.errors import ConfigError, LoyaltyError
from pos_loyalty.server.config import Settings

log = logging.getLogger("pos_loyalty.server")


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header deadline, a connection cap and TCP_NODELAY."""

    header_timeout_s: float = 10.0
    max_connections: int = 1000

    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):  # the peer left already: connection_lost next
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)  # type: ignore[arg-type]
        if len(self.connections) > self.max_connections:
            log.warning("connection limit %d reached; closing a new connection from %s",
                        self.max_connections, self.client[0] if self.client else "?")
            transport.close()
            return
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.header_timeout_s, self._headers_overdue)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_overdue(self) -> None:
        self._deadline = None
        waiting = self.cycle is None or self.cycle.response_complete
        if waiting and not self.transport.is_closing():
            self.transport.close()  # no complete request headers in time

    def handle_events(self) -> None:
        before = self.cycle
        super().handle_events()
        if self.cycle is not before and self.cycle is not None:
            self._disarm()  # a request's headers arrived; the body has its own deadline

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def _protocol(settings: Settings, max_connections: int) -> type[GuardedH11Protocol]:
    return type("ConfiguredH11Protocol", (GuardedH11Protocol,), {
        "header_timeout_s": float(settings.header_timeout_s),
        "max_connections": max_connections})


FD_RESERVE = 64  # descriptors kept for the database, log files and the listening socket
# asyncio accepts up to this many connections per wake-up before any of them is seen (and
# closed if over the cap), so twice this many descriptors are kept free for a burst
ACCEPT_BURST = 128


def _connection_cap(want: int) -> int:
    """Lift the soft open-file limit towards the hard one so the connection cap binds before
    accept() runs out of descriptors; where the hard limit is lower, lower the cap."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    headroom = FD_RESERVE + 2 * ACCEPT_BURST
    target = want + headroom
    if hard != resource.RLIM_INFINITY:
        target = min(target, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft == resource.RLIM_INFINITY:
        return want
    cap = max(1, min(want, soft - headroom))
    if cap < want:
        log.warning("open-file limit %d allows %d connections, not %d", soft, cap, want)
    return cap


def _config(app: FastAPI, settings: Settings, *, log_level: str, access_log: bool,
            tls: tuple[Path, Path] | None) -> uvicorn.Config:
    cap = _connection_cap(settings.max_connections)
    kw: dict[str, Any] = {}
    if tls is not None:
        cert, key = tls
        for what, path in (("certificate", cert), ("key", key)):
            if not path.is_file():
                raise ConfigError(f"TLS {what} file {path} does not exist")
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"cannot load TLS certificate {cert} with key {key}: {exc}") \
                from exc
        kw.update(ssl_certfile=str(cert), ssl_keyfile=str(key))
    return uvicorn.Config(app, log_level=log_level, access_log=access_log, lifespan="on",
                          http=_protocol(settings, cap), timeout_keep_alive=settings.keepalive_s,
                          backlog=ACCEPT_BURST,
                          **kw)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise LoyaltyError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.listen(ACCEPT_BURST)
    return sock


class ServerThread:
    """uvicorn in a background thread on a socket bound before start (port 0 = free port)."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0, *,
                 tls: tuple[Path, Path] | None = None) -> None:
        settings: Settings = app.state.settings
        config = _config(app, settings, log_level="warning", access_log=False, tls=tls)
        self.sock = _bind(host, port)
        self.host = host
        self.port = int(self.sock.getsockname()[1])
        self.scheme = "https" if tls else "http"
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                        name="central-server", daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def start(self) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise LoyaltyError("central server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)
        self.sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_forever(app: FastAPI, host: str, port: int, *,
                  tls: tuple[Path, Path] | None = None) -> None:
    """Foreground server for ``pos-loyalty server``; returns on Ctrl-C / SIGTERM."""
    settings: Settings = app.state.settings
    config = _config(app, settings, log_level="info", access_log=True, tls=tls)
    sock = _bind(host, port)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
