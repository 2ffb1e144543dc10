"""A real pcscd with Debian's vpcd virtual reader for the PC/SC tests.

If a pcscd is already serving (a system one, e.g. started by systemd after installing the
packages) and it has the vpcd reader from /etc/reader.conf.d/vpcd, the tests use it.
Otherwise they start a private pcscd in the foreground with a reader.conf directory of their
own: vpcd named like an ACS ACR122U on a free port pair (vpcd opens slot 0 on PORT and slot 1
on PORT+1), and stop it afterwards.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

VPCD_LIB = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
SYSTEM_CONF = Path("/etc/reader.conf.d/vpcd")
PCSCD_SOCKET = Path("/run/pcscd/pcscd.comm")
OWN_READER = "ACS ACR122U PICC Interface"


@dataclass
class PcscEnv:
    reader: str           # the reader-name part tests select with (pcsc:<reader>)
    port: int             # vpcd slot 0 port our virtual card connects to
    process: subprocess.Popen[bytes] | None
    workdir: Path | None = None


def missing() -> str | None:
    """Why the PC/SC tests cannot run here, or None."""
    try:
        import smartcard.scard  # noqa: F401
    except ImportError:
        return "pyscard not installed (needs libpcsclite-dev and swig to build)"
    if shutil.which("pcscd") is None:
        return "pcscd not installed (apt-get install pcscd)"
    if not VPCD_LIB.exists():
        return "vsmartcard-vpcd not installed (apt-get install vsmartcard-vpcd)"
    return None


def _system_vpcd() -> tuple[str, int] | None:
    if not SYSTEM_CONF.exists():
        return None
    text = SYSTEM_CONF.read_text()
    name = re.search(r'^\s*FRIENDLYNAME\s+"([^"]+)"', text, re.M)
    dev = re.search(r"^\s*DEVICENAME\s+/dev/null:(\S+)", text, re.M)
    if not (name and dev):
        return None
    return name.group(1), int(dev.group(1), 0)


def _pcscd_running() -> bool:
    if not PCSCD_SOCKET.exists():
        return False
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(PCSCD_SOCKET))
        return True
    except OSError:
        return False
    finally:
        probe.close()


def _free_port_pair() -> int:
    """A port P with P+1 also free on every address (vpcd binds INADDR_ANY for both slots)."""
    for _ in range(50):
        with socket.socket() as a, socket.socket() as b:
            a.bind(("0.0.0.0", 0))
            port = int(a.getsockname()[1])
            try:
                b.bind(("0.0.0.0", port + 1))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port pair for vpcd")


def _wait_for_reader(name: str, timeout: float = 15.0) -> bool:
    from pos_loyalty.errors import ReaderError
    from pos_loyalty.nfc.pcsc import list_readers

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if any(name in r for r in list_readers()):
                return True
        except ReaderError:
            pass
        time.sleep(0.1)
    return False


def start(workdir: Path) -> PcscEnv | str:
    """Bring up pcscd with a vpcd reader; a PcscEnv, or the reason it cannot be done."""
    if _pcscd_running():
        system = _system_vpcd()
        if system is None:
            return "a pcscd without the vpcd reader is already running"
        name, port = system
        if not _wait_for_reader(name, 3.0):
            return f"the running pcscd has no '{name}' reader"
        return PcscEnv(reader=name, port=port, process=None)
    port = _free_port_pair()
    conf = workdir / "reader.conf.d"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "vpcd").write_text(
        f'FRIENDLYNAME "{OWN_READER}"\nDEVICENAME /dev/null:{port}\nLIBPATH {VPCD_LIB}\n')
    env = PcscEnv(reader=OWN_READER, port=port, process=None, workdir=workdir)
    return _launch(env) or env


def _launch(env: PcscEnv) -> str | None:
    assert env.workdir is not None
    conf = env.workdir / "reader.conf.d"
    with (env.workdir / "pcscd.log").open("ab") as log:
        env.process = subprocess.Popen(["pcscd", "--foreground", "--config", str(conf)],
                                       stdout=log, stderr=subprocess.STDOUT,
                                       env=dict(os.environ))
    if not _wait_for_reader(OWN_READER):
        stop(env)
        return "pcscd did not come up with the vpcd reader: " + \
            (env.workdir / "pcscd.log").read_text()[-400:]
    return None


def restart(env: PcscEnv) -> bool:
    """Stop and start our own pcscd (as a reader unplug and replug would); False if not ours."""
    if env.process is None or env.workdir is None:
        return False
    stop(env)
    return _launch(env) is None


def stop(env: PcscEnv) -> None:
    if env.process is not None and env.process.poll() is None:
        env.process.terminate()
        try:
            env.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            env.process.kill()
            env.process.wait()
