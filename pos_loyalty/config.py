"""The terminal's configuration: embedded defaults, a TOML file, command-line overrides.

With no file the terminal starts on defaults (a SQLite store in the data directory, the
default program), so a till can be brought up with a single command line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pos_loyalty.configfile import TomlDocument


def default_data_dir() -> Path:
    """Where the terminal keeps its store when nothing else is said."""
    env = os.environ.get("POS_LOYALTY_DATA_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "pos-loyalty"


@dataclass(frozen=True)
class TerminalConfig:
    """Everything the terminal daemon needs to start."""

    terminal_id: str = "T-1"
    data_dir: Path = Path()
    reader_path: str = "usb"
    debounce_s: float = 1.0
    serial_port: str = ""
    baudrate: int = 115200
    db_url: str = ""
    program_file: str | None = None
    issuer_keys: tuple[str, ...] = ()
    accept_legacy_uid: bool = False
    sync_interval_s: float = 10.0
    sync_ca_file: str | None = None  # PEM CA(s) to verify central with (else the system's)
    timezone: str = ""  # IANA name of the shop's zone; wins over the program's
    source: str = "<defaults>"

    @property
    def resolved_db_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / 'terminal.db'}"


_SECTIONS: dict[str, set[str]] = {
    "terminal": {"id", "data_dir", "timezone"},
    "reader": {"path", "debounce_s"},
    "serial": {"port", "baudrate"},
    "store": {"url"},
    "program": {"file"},
    "cards": {"issuer_keys", "accept_legacy_uid"},
    # where central is and the credential come from `pos-loyalty enroll`, kept in the store
    "sync": {"interval_s", "ca_file"},
}

_BAUDRATES = {9600, 19200, 38400, 57600, 115200, 230400}


def load_config(path: str | Path | None) -> TerminalConfig:
    """Defaults, overlaid with the file at ``path`` if one is given."""
    if path is None:
        return TerminalConfig(data_dir=default_data_dir())
    doc = TomlDocument.load(path)
    doc.check_keys("", set(_SECTIONS))
    for section, keys in _SECTIONS.items():
        doc.check_keys(section, keys)
    data_dir = doc.get("terminal.data_dir", str, str(default_data_dir()))
    baud = doc.get("serial.baudrate", int, 115200)
    if baud not in _BAUDRATES:
        raise doc.error("serial.baudrate", f"must be one of {sorted(_BAUDRATES)}, got {baud}")
    debounce = doc.get("reader.debounce_s", (int, float), 1.0)
    if debounce < 0:
        raise doc.error("reader.debounce_s", "must not be negative")
    keys = doc.get("cards.issuer_keys", list, [])
    for i, key in enumerate(keys):
        if not isinstance(key, str) or not _is_hex(key):
            raise doc.error("cards.issuer_keys", f"entry {i + 1} must be a hex string")
    sync_interval = doc.get("sync.interval_s", (int, float), 10.0)
    if sync_interval <= 0:
        raise doc.error("sync.interval_s", "must be a positive number of seconds")
    ca_file = doc.get("sync.ca_file", str, None)
    if ca_file is not None:
        if not Path(ca_file).is_absolute():
            ca_file = str(Path(doc.path).parent / ca_file)
        if not Path(ca_file).is_file():
            raise doc.error("sync.ca_file", f"no such file {ca_file}")
    timezone = doc.get("terminal.timezone", str, "")
    if timezone:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise doc.error("terminal.timezone",
                            f"unknown IANA time zone {timezone!r} (e.g. 'Europe/Paris')") from None
    program = doc.get("program.file", str, None)
    if program is not None and not Path(program).is_absolute():
        program = str(Path(doc.path).parent / program)
    return TerminalConfig(
        terminal_id=doc.get("terminal.id", str, "T-1"),
        data_dir=Path(data_dir),
        reader_path=doc.get("reader.path", str, "usb"),
        debounce_s=float(debounce),
        serial_port=doc.get("serial.port", str, ""),
        baudrate=baud,
        db_url=doc.get("store.url", str, ""),
        program_file=program,
        issuer_keys=tuple(keys),
        accept_legacy_uid=doc.get("cards.accept_legacy_uid", bool, False),
        sync_interval_s=float(sync_interval),
        sync_ca_file=ca_file,
        timezone=timezone,
        source=doc.path,
    )


def with_overrides(
    config: TerminalConfig, *, serial: str | None = None, reader: str | None = None,
    db: str | None = None,
) -> TerminalConfig:
    """Command-line options win over the file."""
    changes: dict[str, str] = {}
    if serial:
        changes["serial_port"] = serial
    if reader:
        changes["reader_path"] = reader
    if db:
        changes["db_url"] = db
    return replace(config, **changes)  # type: ignore[arg-type]


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True
