"""``pos-loyalty doctor``: what readers and ports this machine has, and what stops them working.

Two halves: :func:`gather` looks at the machine (USB devices through libusb, the kernel's
loaded modules, the pcscd socket and PC/SC readers, serial ports and their
``/dev/serial/by-id`` names, installed udev rules and module blacklist); :func:`diagnose` is
pure and turns those facts into findings, each with the fix when something is wrong.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import click

Level = Literal["ok", "info", "warn", "error"]

# USB readers we know: (vid, pid) -> (name, backend). nfcpy's own table plus PC/SC-only ACS.
KNOWN_READERS: dict[tuple[int, int], tuple[str, str]] = {
    (0x054C, 0x06C1): ("Sony RC-S380", "nfcpy"),
    (0x054C, 0x06C3): ("Sony RC-S380", "nfcpy"),
    (0x054C, 0x02E1): ("Sony RC-S330/360/370", "nfcpy"),
    (0x04CC, 0x2533): ("NXP PN533", "nfcpy"),
    (0x04E6, 0x5591): ("SCM SCL3711 (PN533)", "nfcpy"),
    (0x04E6, 0x5593): ("SCM SCL3712 (PN533)", "nfcpy"),
    (0x054C, 0x0193): ("PN531", "nfcpy"),
    (0x04CC, 0x0531): ("PN531 / SCM SCL3710", "nfcpy"),
    (0x072F, 0x2200): ("ACS ACR122U", "pcsc"),
    (0x072F, 0x223B): ("ACS ACR1252U", "pcsc"),
    (0x072F, 0x2219): ("ACS ACR1251U", "pcsc"),
}
# kernel modules that claim NFC readers before nfcpy/pcscd can
KERNEL_NFC_MODULES = ("pn533_usb", "pn533", "port100", "nfc")
PCSCD_SOCKETS = ("/run/pcscd/pcscd.comm", "/var/run/pcscd/pcscd.comm")
UDEV_DIRS = ("/etc/udev/rules.d", "/lib/udev/rules.d", "/usr/lib/udev/rules.d")
MODPROBE_DIRS = ("/etc/modprobe.d", "/lib/modprobe.d", "/usr/lib/modprobe.d")


@dataclass(frozen=True)
class UsbDevice:
    vid: int
    pid: int
    bus: int
    address: int
    accessible: bool  # read/write on /dev/bus/usb/BBB/DDD


@dataclass(frozen=True)
class SerialPort:
    device: str
    description: str
    by_id: tuple[str, ...] = ()


@dataclass(frozen=True)
class Facts:
    """What gather() saw; None means "could not tell"."""

    libusb: bool = True
    usb: tuple[UsbDevice, ...] = ()
    kernel_modules: frozenset[str] | None = None
    pcscd_running: bool = False
    pyscard: bool = False
    pcsc_readers: tuple[str, ...] | None = None
    serial_ports: tuple[SerialPort, ...] = ()
    udev_rules: tuple[str, ...] = ()
    blacklist: tuple[str, ...] = ()
    user_groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Finding:
    level: Level
    topic: str
    message: str
    fix: str | None = None


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)

    def add(self, level: Level, topic: str, message: str, fix: str | None = None) -> None:
        self.findings.append(Finding(level, topic, message, fix))

    @property
    def worst(self) -> Level:
        order: list[Level] = ["ok", "info", "warn", "error"]
        return max((f.level for f in self.findings), key=order.index, default="ok")


def _usb_path(d: UsbDevice) -> str:
    return f"usb:{d.bus:03d}:{d.address:03d}"


def diagnose(facts: Facts) -> Report:
    """Findings with fixes, from facts alone (pure)."""
    r = Report()
    readers = [(d, KNOWN_READERS[(d.vid, d.pid)]) for d in facts.usb
               if (d.vid, d.pid) in KNOWN_READERS]
    if not facts.libusb:
        r.add("error", "usb", "libusb is not available: nfcpy cannot see USB readers",
              "install libusb-1.0 (Debian: apt-get install libusb-1.0-0)")
    elif not readers:
        r.add("info", "usb", "no known USB NFC reader is plugged in",
              "plug in an RC-S380, a PN533 reader or an ACS ACR122U/ACR1252U; PN532 boards "
              "on a serial port use a path like tty:USB0:pn532")
    holding = sorted((facts.kernel_modules or frozenset()) & set(KERNEL_NFC_MODULES))
    for dev, (name, backend) in readers:
        where = f"{name} at {_usb_path(dev)} ({dev.vid:04x}:{dev.pid:04x})"
        if backend == "pcsc":
            if not facts.pcscd_running:
                r.add("error", "pcsc", f"{where} needs pcscd, which is not running",
                      "apt-get install pcscd libccid && systemctl enable --now pcscd")
            else:
                r.add("ok", "pcsc", f"{where}: use it through PC/SC (reader path pcsc:0)")
            continue
        if not dev.accessible:
            r.add("error", "usb", f"{where}: permission denied on /dev/bus/usb",
                  "install hardware/99-pos-loyalty-nfc.rules into /etc/udev/rules.d, run "
                  "'udevadm control --reload && udevadm trigger', and add the daemon user to "
                  "the plugdev group")
        elif holding:
            r.add("error", "kernel", f"{where}: kernel module(s) {', '.join(holding)} "
                  "will claim it before nfcpy",
                  f"'modprobe -r {' '.join(holding)}' and install "
                  "hardware/blacklist-pos-loyalty-nfc.conf into /etc/modprobe.d")
        else:
            r.add("ok", "usb", f"{where}: ready for nfcpy (reader path usb:"
                  f"{dev.vid:04x}:{dev.pid:04x})")
    if holding and not readers:
        r.add("warn", "kernel", f"kernel NFC module(s) loaded: {', '.join(holding)}",
              "blacklist them (hardware/blacklist-pos-loyalty-nfc.conf) if a reader will "
              "be used with nfcpy")
    if facts.kernel_modules is None:
        r.add("info", "kernel", "cannot read /proc/modules (container?): kernel drivers unknown")
    if facts.pcsc_readers:
        for name in facts.pcsc_readers:
            r.add("ok", "pcsc", f"PC/SC reader: {name}")
    elif facts.pcscd_running and not facts.pyscard:
        r.add("warn", "pcsc", "pcscd runs but pyscard is not installed",
              "apt-get install libpcsclite-dev swig gcc python3-dev; pip install pyscard")
    elif not facts.pcscd_running:
        r.add("info", "pcsc", "pcscd is not running (only needed for ACS and other CCID readers)",
              "apt-get install pcscd && systemctl enable --now pcscd")
    if facts.serial_ports:
        for port in facts.serial_ports:
            names = ", ".join(port.by_id) if port.by_id else "no /dev/serial/by-id name"
            r.add("ok", "serial", f"{port.device}: {port.description} ({names})")
        if not any(p.by_id for p in facts.serial_ports):
            r.add("info", "serial", "no stable /dev/serial/by-id names: configure the till "
                  "port by its /dev/ttyXXX name and keep it plugged into the same socket")
    else:
        r.add("info", "serial", "no serial ports found (the till link needs one)",
              "plug in the USB-serial adapter to the till, or use a pty for simulation")
    if readers and not facts.udev_rules:
        r.add("warn", "udev", "pos-loyalty udev rules are not installed",
              "cp hardware/99-pos-loyalty-nfc.rules /etc/udev/rules.d/ && udevadm control "
              "--reload && udevadm trigger")
    if holding and not facts.blacklist:
        r.add("warn", "kernel", "the NFC kernel module blacklist is not installed",
              "cp hardware/blacklist-pos-loyalty-nfc.conf /etc/modprobe.d/")
    if facts.serial_ports and facts.user_groups and "dialout" not in facts.user_groups \
            and os.geteuid() != 0:
        r.add("warn", "serial", "this user is not in the dialout group: serial ports may "
              "refuse to open", "usermod -aG dialout $USER (then log in again)")
    return r


# -- gathering (I/O) ---------------------------------------------------------------------------


def _usb() -> tuple[bool, tuple[UsbDevice, ...]]:
    try:
        usb1: Any = importlib.import_module("usb1")
        found = []
        with usb1.USBContext() as ctx:
            for d in ctx.getDeviceIterator(skip_on_error=True):
                bus, adr = d.getBusNumber(), d.getDeviceAddress()
                node = f"/dev/bus/usb/{bus:03d}/{adr:03d}"
                found.append(UsbDevice(d.getVendorID(), d.getProductID(), bus, adr,
                                       os.access(node, os.R_OK | os.W_OK)))
        return True, tuple(found)
    except (ImportError, OSError, RuntimeError):
        return False, ()
    except Exception as exc:  # usb1 raises its own USBError tree (not OSError)
        if type(exc).__module__.startswith("usb1"):
            return False, ()
        raise


def _modules() -> frozenset[str] | None:
    try:
        text = Path("/proc/modules").read_text()
    except OSError:
        sysmod = Path("/sys/module")
        if not sysmod.is_dir():
            return None
        return frozenset(m for m in KERNEL_NFC_MODULES if (sysmod / m).is_dir())
    return frozenset(line.split()[0] for line in text.splitlines() if line.strip())


def _pcsc() -> tuple[bool, tuple[str, ...] | None]:
    try:
        system: Any = importlib.import_module("smartcard.System")
    except ImportError:
        return False, None
    try:
        return True, tuple(str(r) for r in system.readers())
    except Exception as exc:  # pyscard raises its own exceptions when pcscd is absent
        if type(exc).__module__.startswith("smartcard"):
            return True, None
        raise


def _serial() -> tuple[SerialPort, ...]:
    from serial.tools import list_ports

    by_id: dict[str, list[str]] = {}
    byid_dir = Path("/dev/serial/by-id")
    if byid_dir.is_dir():
        for link in sorted(byid_dir.iterdir()):
            by_id.setdefault(os.path.realpath(link), []).append(str(link))
    return tuple(SerialPort(p.device, str(p.description), tuple(by_id.get(p.device, [])))
                 for p in sorted(list_ports.comports(), key=lambda p: p.device))


def _installed(dirs: Iterable[str], needle: str) -> tuple[str, ...]:
    out: list[str] = []
    for d in dirs:
        p = Path(d)
        if p.is_dir():
            out.extend(str(f) for f in sorted(p.glob(f"*{needle}*")))
    return tuple(out)


def _groups() -> tuple[str, ...]:
    import grp

    return tuple(sorted(g.gr_name for g in grp.getgrall() if g.gr_gid in os.getgroups()))


def gather() -> Facts:
    """Look at this machine."""
    libusb, usb = _usb()
    pyscard, readers = _pcsc()
    return Facts(
        libusb=libusb, usb=usb, kernel_modules=_modules(),
        pcscd_running=any(Path(s).exists() for s in PCSCD_SOCKETS), pyscard=pyscard,
        pcsc_readers=readers, serial_ports=_serial(),
        udev_rules=_installed(UDEV_DIRS, "pos-loyalty"),
        blacklist=_installed(MODPROBE_DIRS, "pos-loyalty"), user_groups=_groups(),
    )


_MARK = {"ok": "ok   ", "info": "info ", "warn": "WARN ", "error": "ERROR"}


def check_reader(path: str, wait_s: float, trust_keys: tuple[str, ...]) -> int:
    """Open ``path`` and report the first tap within ``wait_s``; 0 if a tag was read."""
    from pos_loyalty.errors import ReaderError
    from pos_loyalty.nfc.cardformat import CardTrust
    from pos_loyalty.nfc.events import TapEvent
    from pos_loyalty.nfc.nfcpy_source import open_frontend
    from pos_loyalty.nfc.reader import Reader

    try:
        # no keys given: read and show the card, trusting no issuer (not even the demo)
        trust = CardTrust.from_hex(trust_keys)
        clf = open_frontend(path)
    except ValueError as exc:
        click.echo(f"ERROR [reader] bad --trust-key: {exc}")
        return 2
    except ReaderError as exc:
        click.echo(f"ERROR [reader] {exc}")
        return 1
    click.echo(f"ok    [reader] opened {clf.device} on {path}")
    clf.close()
    click.echo(f"      tap a card within {wait_s:g} s ...")
    got: list[TapEvent] = []
    stop = threading.Event()

    def on_tap(event: TapEvent) -> None:
        got.append(event)
        stop.set()

    reader = Reader(path, trust=trust, debounce_s=0.0)
    timer = threading.Timer(wait_s, stop.set)
    timer.start()
    try:
        reader.run(on_tap, stop)
    finally:
        timer.cancel()
    if not got:
        click.echo("WARN  [reader] no tag was read")
        return 1
    e = got[0]
    click.echo(f"ok    [reader] {e.kind} {e.tag_type} uid {e.uid} read in {e.read_ms:.1f} ms"
               + (f": {e.reason}" if e.reason else "")
               + (f": card {e.card_id} ({'verified' if e.verified else 'NOT verified'})"
                  if e.card_id else ""))
    return 0


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the facts and findings as JSON.")
@click.option("--reader", "reader_path", default=None,
              help="Also open this reader (e.g. usb, tty:USB0:pn532) and read one tap.")
@click.option("--wait", "wait_s", type=click.FloatRange(1, 600), default=15.0,
              show_default=True, help="Seconds to wait for the tap with --reader.")
@click.option("--trust-key", "trust_keys", multiple=True,
              help="Issuer public key (hex) to verify the tapped card with (default: none).")
def doctor(as_json: bool, reader_path: str | None, wait_s: float,
           trust_keys: tuple[str, ...]) -> None:
    """List NFC readers and serial ports, and say what is missing and how to fix it."""
    reader_code = 0
    if reader_path is not None and not as_json:
        reader_code = check_reader(reader_path, wait_s, trust_keys)
    facts = gather()
    report = diagnose(facts)
    if as_json:
        click.echo(json.dumps({"facts": asdict(facts), "findings": [asdict(f) for f in
                                                                     report.findings]},
                              default=sorted))
    else:
        for f in report.findings:
            click.echo(f"{_MARK[f.level]} [{f.topic}] {f.message}")
            if f.fix and f.level in ("warn", "error", "info"):
                click.echo(f"      fix: {f.fix}")
    sys.exit(max(reader_code, 1 if report.worst == "error" else 0))
