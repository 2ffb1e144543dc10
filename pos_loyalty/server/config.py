"""Server settings, in one place: defaults, overridable by ``POS_LOYALTY_*`` environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from pos_loyalty.config import SunKeys, default_data_dir
from pos_loyalty.configfile import TomlDocument
from pos_loyalty.errors import ConfigError


def default_central_url() -> str:
    """``POS_LOYALTY_DB_URL``, else a SQLite file in the data directory (zero setup)."""
    env = os.environ.get("POS_LOYALTY_DB_URL")
    if env:
        return env
    data = default_data_dir()
    data.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{data / 'central.db'}"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"must be an integer, got {raw!r}", key=name) from exc
    if value <= 0:
        raise ConfigError(f"must be positive, got {value}", key=name)
    return value


MIN_ADMIN_TOKEN = 32


@dataclass(frozen=True)
class PhoneConfig:
    """What the customer's phone pages need: keys to check product tags, the catalog, limits.

    ``sun``: NTAG 424 DNA keys with the same meaning as a terminal's ``[sun]`` section (meta
    key, file master key diversified per tag UID, system id; ``product_url`` is the URL
    prefix up to the product code, e.g. ``https://shop.example/p/``). ``issuer_keys``: the
    Ed25519 public keys (hex) whose signed NTAG21x product tags are genuine. No key is
    trusted by default: with none, every tag is shown as unverified.
    ``taps_per_tag``/``taps_per_client``: page views per tag UID / per client address in
    ``window_s``; ``posts_per_client``: form posts per client address in ``window_s``;
    ``points_for_engaging``: given once per tag, on its first genuine tap, to the member a
    till linked it to (0: none); ``card_failures``: wrong card numbers per client address
    in ``window_s`` on the member's sign-in page.
    """

    sun: SunKeys | None = None
    issuer_keys: tuple[str, ...] = ()
    catalog_dir: Path | None = None
    coupon_percent: int = 10
    coupon_days: int = 90
    points_for_engaging: int = 0
    taps_per_tag: int = 30
    taps_per_client: int = 120
    posts_per_client: int = 20
    card_failures: int = 10
    window_s: int = 3600
    source: str = "<defaults>"


_PHONE_SECTIONS = {
    "sun": {"key_file", "meta_key", "file_master_key", "system_id", "member_url",
            "product_url"},
    "cards": {"issuer_keys"},
    "catalog": {"dir"},
    "phone": {"coupon_percent", "coupon_days", "points_for_engaging", "taps_per_tag",
              "card_failures",
              "taps_per_client", "posts_per_client", "window_s"},
}


def load_phone_config(path: str | Path) -> PhoneConfig:
    """Read a phone pages' TOML file (``POS_LOYALTY_PHONE_CONFIG``); errors name file,
    line and key."""
    from pos_loyalty.config import read_sun_keys  # the terminal's [sun] reader: same meaning

    doc = TomlDocument.load(path)
    doc.check_keys("", set(_PHONE_SECTIONS))
    for name, keys in _PHONE_SECTIONS.items():
        doc.check_keys(name, keys)
    sun = read_sun_keys(doc)
    if sun is not None and sun.product_url is None:
        raise doc.error("sun.product_url", "missing: the URL prefix of product tags, up to "
                        "the product code (https://.../p/)")
    keys = doc.get("cards.issuer_keys", list, [])
    for i, key in enumerate(keys):
        if not isinstance(key, str) or len(key) != 64 or not all(
                c in "0123456789abcdefABCDEF" for c in key):
            raise doc.error("cards.issuer_keys", f"entry {i + 1} must be an Ed25519 public "
                            "key as 64 hex digits")
    catalog = doc.get("catalog.dir", str, None)
    catalog_dir = None
    if catalog is not None:
        catalog_dir = Path(catalog)
        if not catalog_dir.is_absolute():
            catalog_dir = Path(doc.path).parent / catalog_dir
    limits: dict[str, int] = {}
    for name in sorted(_PHONE_SECTIONS["phone"]):
        default: int = getattr(PhoneConfig, name)
        value = doc.get(f"phone.{name}", int, default)
        low = 0 if name == "points_for_engaging" else 1
        high = 100 if name == "coupon_percent" else 10_000_000
        if not low <= value <= high:
            raise doc.error(f"phone.{name}", f"must be {low}..{high}, got {value}")
        limits[name] = value
    return PhoneConfig(sun=sun, issuer_keys=tuple(k.lower() for k in keys),
                       catalog_dir=catalog_dir, source=str(path), **limits)


@dataclass(frozen=True)
class Settings:
    """Limits and policies of the central server; every input size and wait is bounded here.

    ``header_timeout_s``: a connection must deliver a request's headers this soon after it
    opens (or after its previous answer); ``body_timeout_s``: a body must arrive this soon;
    ``max_connections``: connections beyond it are closed at once (the file-descriptor
    limit is raised to fit it); ``enroll_failures``/``enroll_window_s``: wrong enrollment
    codes one address may send per window before it gets 429; ``phone``: the product tag
    pages (read from the file ``POS_LOYALTY_PHONE_CONFIG`` names).
    """

    db_url: str = field(default_factory=default_central_url)
    max_body_bytes: int = 8 * 1024 * 1024
    max_pull_limit: int = 50_000
    future_tolerance_s: int = 300
    header_timeout_s: int = 10
    body_timeout_s: int = 30
    keepalive_s: int = 5
    max_connections: int = 1000
    enroll_failures: int = 10
    enroll_window_s: int = 60
    admin_token: str = ""  # POS_LOYALTY_ADMIN_TOKEN; empty: the /v1/admin API is off
    phone: PhoneConfig = field(default_factory=PhoneConfig)

    @classmethod
    def from_env(cls, db_url: str | None = None) -> Settings:
        def env(name: str) -> int:
            default: int = getattr(cls, name)
            return _env_int(f"POS_LOYALTY_{name.upper()}", default)

        token = os.environ.get("POS_LOYALTY_ADMIN_TOKEN", "")
        if token and len(token) < MIN_ADMIN_TOKEN:
            raise ConfigError(f"must be at least {MIN_ADMIN_TOKEN} characters (make one with "
                              "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`)",
                              key="POS_LOYALTY_ADMIN_TOKEN")
        phone_file = os.environ.get("POS_LOYALTY_PHONE_CONFIG")
        return cls(
            db_url=db_url or default_central_url(), admin_token=token,
            phone=load_phone_config(phone_file) if phone_file else PhoneConfig(),
            **{name: env(name) for name in (
                "max_body_bytes", "future_tolerance_s", "header_timeout_s", "body_timeout_s",
                "keepalive_s", "max_connections", "enroll_failures", "enroll_window_s")},
        )
