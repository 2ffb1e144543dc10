"""pos-loyalty doctor: findings from facts (pure), and the command on this machine."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

from click.testing import CliRunner

from pos_loyalty.cli import main
from pos_loyalty.nfc.demo_keys import DEMO_PUBLIC_KEY_HEX
from pos_loyalty.nfc.doctor import Facts, SerialPort, UsbDevice, diagnose
from pos_loyalty.nfc.sdnotify import Watchdog, notify, watchdog_interval
from pos_loyalty.nfc.sim import cards
from pos_loyalty.nfc.sim.emulator import TagEmulator

RCS380 = UsbDevice(0x054C, 0x06C3, 1, 7, accessible=True)
ACR1252 = UsbDevice(0x072F, 0x223B, 1, 8, accessible=True)


def _levels(facts: Facts) -> dict[str, str]:
    return {f.message: f.level for f in diagnose(facts).findings}


class TestDiagnose:
    def test_ready_reader(self) -> None:
        """An accessible RC-S380 with no kernel driver loaded is ready, with its nfcpy path."""
        report = diagnose(Facts(usb=(RCS380,), kernel_modules=frozenset(),
                                udev_rules=("/etc/udev/rules.d/99-pos-loyalty-nfc.rules",)))
        ok = [f for f in report.findings if f.topic == "usb"]
        assert ok[0].level == "ok" and "usb:054c:06c3" in ok[0].message
        assert report.worst != "error"

    def test_permission_denied_points_to_udev(self) -> None:
        """A reader without device access is an error whose fix is the udev rules."""
        dev = UsbDevice(0x054C, 0x06C3, 1, 7, accessible=False)
        report = diagnose(Facts(usb=(dev,), kernel_modules=frozenset()))
        err = [f for f in report.findings if f.level == "error"]
        assert err and "permission" in err[0].message and "udev" in (err[0].fix or "")
        assert report.worst == "error"

    def test_kernel_driver_holding_reader(self) -> None:
        """port100 loaded with an RC-S380 present is an error naming the module and blacklist."""
        report = diagnose(Facts(usb=(RCS380,), kernel_modules=frozenset({"port100", "nfc"})))
        err = [f for f in report.findings if f.topic == "kernel" and f.level == "error"]
        assert err and "port100" in err[0].message
        assert "blacklist" in (err[0].fix or "")

    def test_acs_reader_needs_pcscd(self) -> None:
        """An ACR1252U without pcscd running is an error telling how to start pcscd."""
        report = diagnose(Facts(usb=(ACR1252,), pcscd_running=False))
        err = [f for f in report.findings if f.level == "error"]
        assert err and "pcscd" in err[0].message and "pcscd" in (err[0].fix or "")

    def test_acs_reader_with_pcscd(self) -> None:
        """With pcscd running the ACR1252U is ok and the PC/SC readers are listed."""
        report = diagnose(Facts(usb=(ACR1252,), pcscd_running=True, pyscard=True,
                                pcsc_readers=("ACS ACR1252 Dual Reader [ACR1252 PICC] 00",)))
        assert report.worst != "error"
        assert any("ACR1252 Dual" in f.message for f in report.findings)

    def test_serial_ports_with_by_id(self) -> None:
        """Serial ports are listed with their /dev/serial/by-id names."""
        port = SerialPort("/dev/ttyUSB0", "FT232R USB UART",
                          ("/dev/serial/by-id/usb-FTDI_FT232R_A1-if00-port0",))
        report = diagnose(Facts(serial_ports=(port,)))
        assert any("/dev/ttyUSB0" in f.message and "by-id/usb-FTDI" in f.message
                   for f in report.findings)

    def test_no_libusb(self) -> None:
        """Missing libusb is an error with the package to install."""
        report = diagnose(Facts(libusb=False))
        assert report.worst == "error"


class TestDoctorCommand:
    def test_runs_here(self) -> None:
        """doctor runs on this machine, prints findings and exits 0 or 1 (never a traceback)."""
        res = CliRunner().invoke(main, ["doctor"])
        assert res.exit_code in (0, 1), res.output
        assert "[usb]" in res.output and "[serial]" in res.output

    def test_json(self) -> None:
        """doctor --json prints facts and findings as one JSON object."""
        res = CliRunner().invoke(main, ["doctor", "--json"])
        doc = json.loads(res.stdout)
        assert {"facts", "findings"} <= set(doc)
        assert all({"level", "topic", "message"} <= set(f) for f in doc["findings"])


class TestDoctorReaderCheck:
    def test_reads_one_tap(self, emulator: TagEmulator) -> None:
        """doctor --reader opens the reader and reports the card tapped on it."""
        tag = cards.member_card("DOC-1")
        emulator.present(tag)
        res = CliRunner().invoke(main, ["doctor", "--reader", emulator.path, "--wait", "5",
                                        "--trust-key", DEMO_PUBLIC_KEY_HEX])
        emulator.remove()
        assert f"member NTAG213 uid {tag.uid.hex().upper()}" in res.output
        assert "card DOC-1 (verified)" in res.output

    def test_trusts_no_issuer_unless_told(self, emulator: TagEmulator) -> None:
        """Without --trust-key even a demo-signed card is shown as from an unknown issuer."""
        emulator.present(cards.member_card("DOC-2"))
        res = CliRunner().invoke(main, ["doctor", "--reader", emulator.path, "--wait", "5"])
        emulator.remove()
        assert "refused NTAG213" in res.output and "unknown issuer" in res.output

    def test_no_tap_is_reported(self, emulator: TagEmulator) -> None:
        """With nothing tapped doctor --reader says so and exits 1."""
        res = CliRunner().invoke(main, ["doctor", "--reader", emulator.path, "--wait", "1"])
        assert res.exit_code == 1
        assert "no tag was read" in res.output

    def test_unopenable_reader(self) -> None:
        """A reader that cannot be opened is reported with a reason, exit 1."""
        res = CliRunner().invoke(main, ["doctor", "--reader", "usb:ffff:fffe", "--wait", "1"])
        assert res.exit_code == 1
        assert "ERROR [reader] cannot open NFC reader" in res.output


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
