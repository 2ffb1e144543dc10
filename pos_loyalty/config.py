"""The terminal's configuration: embedded defaults, a TOML file, command-line overrides.

With no file the terminal starts on defaults (a SQLite store in the data directory, the
default program), so a till can be brought up with a single command line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pos_loyalty.configfile import TomlDocument, key_line
from pos_loyalty.errors import ConfigError


def default_data_dir() -> Path:
    """Where the terminal keeps its store when nothing else is said."""
    env = os.environ.get("POS_LOYALTY_DATA_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "pos-loyalty"


@dataclass(frozen=True)
class SunKeys:
    """NTAG 424 DNA SUN keys: one meta read key, per-tag file read keys from a master key.

    A tag's file read key is diversified from ``file_master_key`` with its UID and
    ``system_id`` (NXP AN10922); the meta read key cannot be per tag, as the UID is what it
    decrypts. Tags whose URL starts with ``member_url`` are member cards, ``product_url``
    product tags.
    """

    meta_key: bytes
    file_master_key: bytes
    system_id: bytes
    member_url: str | None = None
    product_url: str | None = None


@dataclass(frozen=True)
class PhoneTill:
    """The ``[phone]`` section: what the till does with the customer's phone.

    ``visit_url``: central's public https address up to the visit page (``.../v/``); each
    member's sale then tells the till a short link to its one question. Reorder coupons
    taken while central is unreachable: at most ``offline_coupons_per_day`` per terminal
    and shop day, each ``offline_coupon_percent`` off one unit of the dearest item and at
    most ``offline_coupon_max`` minor units (0 coupons: none offline).
    """

    visit_url: str | None = None
    offline_coupons_per_day: int = 5
    offline_coupon_percent: int = 10
    offline_coupon_max: int = 2000


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
    legacy_uid_redeem: bool = False
    simulation: bool = False
    sun_keys: SunKeys | None = None
    sync_interval_s: float = 10.0
    sync_ca_file: str | None = None  # PEM CA(s) to verify central with (else the system's)
    timezone: str = ""  # IANA name of the shop's zone; wins over the program's
    phone: PhoneTill = PhoneTill()
    source: str = "<defaults>"
    cards_line: int | None = None  # where [cards] issuer_keys is (or would be) in the file

    @property
    def resolved_db_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / 'terminal.db'}"


_SECTIONS: dict[str, set[str]] = {
    "terminal": {"id", "data_dir", "timezone"},
    "reader": {"path", "debounce_s"},
    "serial": {"port", "baudrate"},
    "store": {"url"},
    "program": {"file"},
    "cards": {"issuer_keys", "accept_legacy_uid", "legacy_uid_redeem", "simulation"},
    "sun": {"key_file", "meta_key", "file_master_key", "system_id", "member_url",
            "product_url"},
    # where central is and the credential come from `pos-loyalty enroll`, kept in the store
    "sync": {"interval_s", "ca_file"},
    "phone": {"visit_url", "offline_coupons_per_day", "offline_coupon_percent",
              "offline_coupon_max"},
}

BAUDRATES = {9600, 19200, 38400, 57600, 115200, 230400}


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
    if baud not in BAUDRATES:
        raise doc.error("serial.baudrate", f"must be one of {sorted(BAUDRATES)}, got {baud}")
    debounce = doc.get("reader.debounce_s", (int, float), 1.0)
    if debounce < 0:
        raise doc.error("reader.debounce_s", "must not be negative")
    keys = doc.get("cards.issuer_keys", list, [])
    for i, key in enumerate(keys):
        if not isinstance(key, str) or not _is_hex(key) or len(key) != 64:
            raise doc.error("cards.issuer_keys", f"entry {i + 1} must be an Ed25519 public "
                            "key as 64 hex digits (as `pos-loyalty card keygen` prints it)")
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
        legacy_uid_redeem=doc.get("cards.legacy_uid_redeem", bool, False),
        simulation=doc.get("cards.simulation", bool, False),
        sun_keys=read_sun_keys(doc),
        sync_interval_s=float(sync_interval),
        sync_ca_file=ca_file,
        timezone=timezone,
        phone=read_phone(doc),
        source=doc.path,
        cards_line=key_line(doc.text, "cards.issuer_keys") or key_line(doc.text, "cards"),
    )


def read_phone(doc: TomlDocument) -> PhoneTill:
    """The [phone] section (defaults when it is missing)."""
    url = doc.get("phone.visit_url", str, None)
    if url is not None and (not url.startswith("https://") or len(url) > 200):
        raise doc.error("phone.visit_url", "must be an https:// address (central's public "
                        "one, ending before the sale's code, e.g. https://shop.example/v/)")
    values = {}
    for key, top in (("offline_coupons_per_day", 1000), ("offline_coupon_percent", 100),
                     ("offline_coupon_max", 10**9)):
        value = doc.get(f"phone.{key}", int, getattr(PhoneTill, key))
        if not 0 <= value <= top:
            raise doc.error(f"phone.{key}", f"must be a whole number 0..{top}")
        values[key] = value
    if values["offline_coupon_percent"] == 0:
        raise doc.error("phone.offline_coupon_percent", "must be 1..100")
    return PhoneTill(visit_url=url, **values)


def _key_hex(doc: TomlDocument, dotted: str, value: object) -> bytes:
    if not isinstance(value, str) or len(value) != 32 or not _is_hex(value):
        raise doc.error(dotted, "must be an AES-128 key as 32 hex digits")
    return bytes.fromhex(value)


def read_sun_keys(doc: TomlDocument) -> SunKeys | None:
    """The [sun] section: keys inline or in ``key_file`` (a TOML file only root can read)."""
    section = doc.table("sun")
    if not section:
        return None
    keys_doc, prefix = doc, "sun."
    key_file = doc.get("sun.key_file", str, None)
    if key_file is not None:
        if "meta_key" in section or "file_master_key" in section:
            raise doc.error("sun.key_file", "give the keys inline or in key_file, not both")
        path = Path(key_file)
        if not path.is_absolute():
            path = Path(doc.path).parent / path
        keys_doc, prefix = TomlDocument.load(path), ""
        keys_doc.check_keys("", {"meta_key", "file_master_key"})
    for name in ("meta_key", "file_master_key"):
        if keys_doc.get(prefix + name, str, None) is None:
            raise keys_doc.error(prefix + name if prefix else name,
                                 "missing: SUN tags need a meta key and a file master key")
    meta = _key_hex(keys_doc, prefix + "meta_key", keys_doc.get(prefix + "meta_key", str, ""))
    master = _key_hex(keys_doc, prefix + "file_master_key",
                      keys_doc.get(prefix + "file_master_key", str, ""))
    system_id = doc.get("sun.system_id", str, "pos-loyalty")
    if not system_id.isascii() or not 1 <= len(system_id) <= 24:
        raise doc.error("sun.system_id", "must be 1-24 ASCII characters")
    urls = {}
    for name in ("member_url", "product_url"):
        url = doc.get(f"sun.{name}", str, None)
        if url is not None and not url.startswith("https://"):
            raise doc.error(f"sun.{name}", "must be an https:// URL prefix")
        urls[name] = url
    if not any(urls.values()):
        raise doc.error("sun", "give member_url, product_url or both: the URL prefixes "
                        "of the tags these keys open")
    return SunKeys(meta, master, system_id.encode("ascii"), urls["member_url"],
                   urls["product_url"])


def check_card_keys(config: TerminalConfig) -> None:
    """Refuse to run a terminal that would trust no card, unless it is a simulation.

    The demo keys are published in the source tree: they are trusted only when the config
    (``[cards] simulation = true``) or the command line (``--simulation``) says so.
    """
    if config.simulation or config.issuer_keys or config.sun_keys is not None:
        return
    raise ConfigError(
        "no card issuer key: add the public key `pos-loyalty card keygen` printed (or [sun] "
        "keys), or run simulated hardware with --simulation", path=config.source,
        key="cards.issuer_keys", line=config.cards_line)


def with_overrides(
    config: TerminalConfig, *, serial: str | None = None, reader: str | None = None,
    db: str | None = None, simulation: bool = False,
) -> TerminalConfig:
    """Command-line options win over the file."""
    changes: dict[str, str | bool] = {}
    if simulation:
        changes["simulation"] = True
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
