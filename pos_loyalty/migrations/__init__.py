"""Alembic migrations for the two schemas, shipped inside the package.

``central/`` migrates the server's database (SQLite or PostgreSQL), ``terminal/`` a
terminal's local SQLite store (batch mode, since SQLite cannot ALTER most things in place).
No ``alembic.ini`` is needed: :func:`upgrade_central` and :func:`upgrade_terminal` build the
configuration in code, and ``pos-loyalty db upgrade`` calls them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, MetaData, create_engine, inspect
from sqlalchemy.exc import SQLAlchemyError

from pos_loyalty.errors import StoreError

HERE = Path(__file__).resolve().parent

# The terminal revision whose schema equals what LocalStore's create_all made before sync
# columns existed; used to adopt databases created without Alembic.
TERMINAL_BASELINE = "t0001"


def run_env(context: Any, metadata: MetaData) -> None:
    """Body shared by both ``env.py`` files: online migration on the given connection."""
    config = context.config
    connection: Connection | None = config.attributes.get("connection")
    if connection is None:
        engine = create_engine(config.get_main_option("sqlalchemy.url"))
        with engine.connect() as conn:
            _configure_and_run(context, conn, metadata)
        engine.dispose()
    else:
        _configure_and_run(context, connection, metadata)


def _configure_and_run(context: Any, conn: Connection, metadata: MetaData) -> None:
    context.configure(
        connection=conn,
        target_metadata=metadata,
        render_as_batch=conn.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _config(which: str, conn: Connection) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(HERE / which))
    cfg.attributes["connection"] = conn
    return cfg


def upgrade_central(url: str) -> None:
    """Bring the central database at ``url`` to the newest schema."""
    _upgrade("central", url)


def upgrade_terminal(url: str) -> None:
    """Bring a terminal's local database to the newest schema, atomically.

    Every pending revision, the adoption stamp and the new ``alembic_version`` are one
    SQLite transaction (:mod:`pos_loyalty.store.sqlite` makes DDL transactional), so a kill
    at any moment of a first start or an upgrade leaves the store as it was before.

    A store made by ``create_all`` (no ``alembic_version`` table) is adopted: stamped at the
    newest revision whose columns it already has, then upgraded.
    """
    from pos_loyalty.store.sqlite import open_engine, write

    engine = open_engine(url)  # a URL that is not SQLite fails here, before alembic loads
    from alembic import command
    from alembic.util import CommandError

    try:
        with write(engine, "migrating the terminal database") as conn:
            cfg = _config("terminal", conn)
            stamp = _terminal_adoption(conn)
            if stamp is not None:
                command.stamp(cfg, stamp)
            command.upgrade(cfg, "head")
    except CommandError as exc:
        raise StoreError(f"cannot migrate the terminal database {url!r}: {exc}") from exc
    finally:
        engine.dispose()


def _upgrade(which: str, url: str) -> None:
    from alembic import command

    try:
        engine = create_engine(url)
    except (SQLAlchemyError, ValueError, ImportError) as exc:
        raise StoreError(f"invalid database URL {url!r}: {exc}") from exc
    try:
        with engine.begin() as conn:
            command.upgrade(_config(which, conn), "head")
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot migrate {which} database: {exc}") from exc
    finally:
        engine.dispose()


def _terminal_adoption(conn: Connection) -> str | None:
    insp = inspect(conn)
    tables = set(insp.get_table_names())
    if "alembic_version" in tables or "terminal_state" not in tables:
        return None
    columns = {c["name"] for c in insp.get_columns("terminal_state")}
    if "clock_offset_ms" not in columns:
        return TERMINAL_BASELINE
    members = {c["name"] for c in insp.get_columns("members")}
    return "head" if "state" in members else "t0002"


def current_revision(url: str) -> str | None:
    """The revision a database is at, or None if it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rev: str | None = MigrationContext.configure(conn).get_current_revision()
            return rev
    finally:
        engine.dispose()
