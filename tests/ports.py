"""Loopback ports for tests that share the machine with other test processes.

The suite runs in parallel (pytest-xdist workers, and other runs on the same host), so the
usual trick of probing a free port and closing it is a race: between the probe and the
server's bind, or while the test keeps central "down", any other socket may be given that
port. A :class:`ReservedPort` closes that window instead.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator


class ReservedPort:
    """A loopback port held for one test: bound with SO_REUSEADDR, never listening.

    While it is held, a connection to it is refused (a central that is down), and the kernel
    hands it to no socket asking for a free port (another worker's server, a client's
    ephemeral port). A server of ours may still bind and listen on it, as uvicorn's does with
    SO_REUSEADDR; once that server stops, the port is down again and still ours.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, 0))
        self.port = int(self._sock.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> ReservedPort:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def held_udp_port(port: int, host: str = "127.0.0.1") -> Iterator[None]:
    """Keep a UDP port whose tag side is gone for a while from every other socket.

    A socket bound there that never answers is, to nfcpy's udp driver, the same as nobody
    (it sends and receives unconnected, so it sees no ICMP refusal either): the reader keeps
    polling an empty field. Bind the next tag side right after the block ends, in the same
    thread, so the port is free only for that instant.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, port))
        yield
