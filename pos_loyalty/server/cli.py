"""Commands of the central server: ``server``, ``db``, ``admin``, ``report``."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import date, datetime
from typing import Any

import click

from pos_loyalty.errors import ConfigError, LoyaltyError
from pos_loyalty.server.central import CentralStore
from pos_loyalty.server.config import Settings, default_central_url

DB_HELP = "Central database URL (default: POS_LOYALTY_DB_URL or a SQLite file in the data dir)."


@contextmanager
def cli_errors() -> Iterator[None]:
    """Domain errors become one line: exit 2 for configuration, 1 otherwise."""
    try:
        yield
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    except LoyaltyError as exc:
        raise click.ClickException(str(exc)) from exc


@contextmanager
def open_central(url: str | None) -> Iterator[CentralStore]:
    from pos_loyalty.migrations import upgrade_central

    with cli_errors():
        db = url or default_central_url()
        upgrade_central(db)
        store = CentralStore(db)
        try:
            yield store
        finally:
            store.close()


def db_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--db", "db_url", default=None, metavar="URL", help=DB_HELP)(fn)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@db_option
def server(host: str, port: int, db_url: str | None) -> None:
    """Run the central server (migrates the database first)."""
    from pos_loyalty.server.app import create_app
    from pos_loyalty.server.runner import serve_forever

    with cli_errors():
        settings = Settings.from_env(db_url)
        app = create_app(settings)
        click.echo(f"pos-loyalty central on http://{host}:{port} (OpenAPI at /openapi.json)",
                   err=True)
        serve_forever(app, host, port)


@click.group()
def db() -> None:
    """Database schema management."""


@db.command("upgrade")
@click.option("--central", "central_url", metavar="URL", help="Migrate this central database.")
@click.option("--terminal", "terminal_url", metavar="URL",
              help="Migrate this terminal's local database.")
def db_upgrade(central_url: str | None, terminal_url: str | None) -> None:
    """Apply Alembic migrations (central by default)."""
    from pos_loyalty.migrations import current_revision, upgrade_central, upgrade_terminal

    if central_url and terminal_url:
        raise click.UsageError("give --central or --terminal, not both")
    with cli_errors():
        if terminal_url:
            upgrade_terminal(terminal_url)
            click.echo(f"terminal database at revision {current_revision(terminal_url)}")
        else:
            url = central_url or default_central_url()
            upgrade_central(url)
            click.echo(f"central database at revision {current_revision(url)}")


@click.group()
def admin() -> None:
    """Store IT: terminals, members and cards on the central database."""


@admin.group()
def terminal() -> None:
    """Terminals: add (one-time enrollment code), revoke, list."""


@terminal.command("add")
@click.option("--store", "store_id", required=True, help="Store the terminal belongs to.")
@click.option("--id", "terminal_id", default=None, help="Terminal id (default: generated).")
@db_option
def terminal_add(store_id: str, terminal_id: str | None, db_url: str | None) -> None:
    """Register a terminal and print its one-time enrollment code."""
    with open_central(db_url) as central, cli_errors():
        tid, code = central.add_terminal(store_id, terminal_id=terminal_id)
    click.echo(f"terminal {tid} (store {store_id})")
    click.echo(f"enrollment code: {code}")
    click.echo(f"on the terminal: pos-loyalty enroll <server URL> {code}")


@terminal.command("revoke")
@click.argument("terminal_id")
@db_option
def terminal_revoke(terminal_id: str, db_url: str | None) -> None:
    """Revoke a terminal's credential; its next request is refused (403)."""
    with open_central(db_url) as central, cli_errors():
        if not central.revoke_terminal(terminal_id):
            raise click.ClickException(f"no terminal {terminal_id}")
    click.echo(f"terminal {terminal_id} revoked")


@terminal.command("list")
@db_option
def terminal_list(db_url: str | None) -> None:
    """List terminals with status, acked sequence and last contact."""
    with open_central(db_url) as central, cli_errors():
        rows = central.terminals()
    for r in rows:
        seen = r["last_seen_at"].isoformat(timespec="seconds") if r["last_seen_at"] else "-"
        click.echo(f"{r['terminal_id']}\t{r['store_id']}\t{r['status']}\t"
                   f"acked={r['acked_seq']}\tseen={seen}\toffset_ms={r['clock_offset_ms']}")


@admin.group()
def member() -> None:
    """Members and their cards."""


@member.command("add")
@click.argument("member_id")
@click.option("--name", default="", help="Display name.")
@click.option("--card", "card_id", default=None, help="Card number to issue.")
@click.option("--uid", default=None, help="Card UID (hex) for UID-only cards.")
@click.option("--tier", default=None)
@click.option("--points", default=0, type=int, help="Opening balance (a central adjustment).")
@db_option
def member_add(member_id: str, name: str, card_id: str | None, uid: str | None,
               tier: str | None, points: int, db_url: str | None) -> None:
    """Add (or update) a member, optionally with a card and opening points."""
    with open_central(db_url) as central, cli_errors():
        central.add_member(member_id, name, card_id=card_id, uid=uid, tier=tier)
        if points:
            central.adjust_points(member_id, points, "opening balance")
    click.echo(f"member {member_id} saved")


@admin.group()
def card() -> None:
    """Cards: revoke a lost or stolen card."""


@card.command("revoke")
@click.argument("card_id")
@db_option
def card_revoke(card_id: str, db_url: str | None) -> None:
    """Revoke a card; terminals refuse it after their next pull."""
    with open_central(db_url) as central, cli_errors():
        if not central.set_card_status(card_id, "revoked"):
            raise click.ClickException(f"no card {card_id}")
    click.echo(f"card {card_id} revoked")


@click.group()
def report() -> None:
    """Reports for store IT."""


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date | datetime) else value


@report.command("reconcile")
@db_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--all", "include_resolved", is_flag=True, help="Include resolved overdrafts.")
def report_reconcile(db_url: str | None, as_json: bool, include_resolved: bool) -> None:
    """Overdrafts from offline redemption, and events with suspicious terminal clocks."""
    with open_central(db_url) as central, cli_errors():
        rep = central.reconcile(include_resolved=include_resolved)
    if as_json:
        out = {
            "overdrafts": [{k: _jsonable(v) for k, v in asdict(o).items()}
                           for o in rep.overdrafts],
            "flagged": [{k: _jsonable(v) for k, v in asdict(f).items()} for f in rep.flagged],
        }
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(f"overdrafts: {len(rep.overdrafts)} "
               f"({sum(o.points_short for o in rep.overdrafts)} points short)")
    for o in rep.overdrafts:
        click.echo(f"  {o.created_at:%Y-%m-%d %H:%M} member {o.member_id} short "
                   f"{o.points_short} pts (balance now {o.balance_now}) terminal "
                   f"{o.terminal_id} store {o.store_id} event {o.event_id}")
    click.echo(f"flagged events: {len(rep.flagged)}")
    for f in rep.flagged:
        click.echo(f"  {f.flags}: event {f.event_id} terminal {f.terminal_id} member "
                   f"{f.member_id} terminal time {f.terminal_time:%Y-%m-%d %H:%M:%S} "
                   f"received {f.received_at:%Y-%m-%d %H:%M:%S}")
