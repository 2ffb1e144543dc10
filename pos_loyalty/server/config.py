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


MIN_ADMIN_TOKEN = 32


@dataclass(frozen=True)
class Settings:
    """Limits and policies of the central server; every input size and wait is bounded here.

    ``header_timeout_s``: a connection must deliver a request's headers this soon after it
    opens (or after its previous answer); ``body_timeout_s``: a body must arrive this soon;
    ``max_connections``: connections beyond it are closed at once (the file-descriptor
    limit is raised to fit it); ``enroll_failures``/``enroll_window_s``: wrong enrollment
    codes one address may send per window before it gets 429.
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
        return cls(
            db_url=db_url or default_central_url(), admin_token=token,
            **{name: env(name) for name in (
                "max_body_bytes", "future_tolerance_s", "header_timeout_s", "body_timeout_s",
                "keepalive_s", "max_connections", "enroll_failures", "enroll_window_s")},
        )
