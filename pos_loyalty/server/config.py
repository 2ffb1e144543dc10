"""Server settings, in one place: defaults, overridable by ``POS_LOYALTY_*`` environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from pos_loyalty.config import default_data_dir
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


@dataclass(frozen=True)
class Settings:
    """Limits and policies of the central server; every input size is bounded here."""

    db_url: str = field(default_factory=default_central_url)
    max_body_bytes: int = 8 * 1024 * 1024
    max_pull_limit: int = 50_000
    future_tolerance_s: int = 300

    @classmethod
    def from_env(cls, db_url: str | None = None) -> Settings:
        return cls(
            db_url=db_url or default_central_url(),
            max_body_bytes=_env_int("POS_LOYALTY_MAX_BODY_BYTES", cls.max_body_bytes),
            future_tolerance_s=_env_int("POS_LOYALTY_FUTURE_TOLERANCE_S",
                                        cls.future_tolerance_s),
        )
