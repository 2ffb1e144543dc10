"""systemd notification: READY=1 and the watchdog pings, outside systemd nothing at all."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from pos_loyalty.terminal.sdnotify import Watchdog, notify, watchdog_interval


class TestSdNotify:
    def test_notify_without_systemd_is_a_no_op(self) -> None:
        """Outside systemd nothing is sent."""
        assert notify("READY=1", env={}) is False
        assert watchdog_interval({}) is None

    def test_notify_and_watchdog_reach_the_socket(self, tmp_path: Path) -> None:
        """READY=1 and WATCHDOG=1 datagrams reach $NOTIFY_SOCKET; unhealthy stops the pings."""
        path = str(tmp_path / "notify")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        server.bind(path)
        server.settimeout(2)
        env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000"}
        try:
            assert notify("READY=1", env=env)
            assert server.recv(64) == b"READY=1"
            healthy = [True]
            dog = Watchdog(lambda: healthy[0], env=env)
            assert dog.interval == 0.05
            dog.start()
            assert server.recv(64) == b"WATCHDOG=1"
            healthy[0] = False
            time.sleep(0.2)
            pings = dog.pings
            time.sleep(0.2)
            dog.stop()
            assert dog.pings == pings
        finally:
            server.close()
