"""Commands of the central server: ``server``, ``db``, ``admin``, ``report``."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from pos_loyalty.errors import ConfigError, LoyaltyError
from pos_loyalty.server.central import CentralStore, secure_sqlite_file
from pos_loyalty.server.config import Settings, default_central_url
from pos_loyalty.server.logs import escape_controls

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
        secure_sqlite_file(db)
        upgrade_central(db)
        store = CentralStore(db)
        try:
            yield store
        finally:
            store.close()


def db_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--db", "db_url", default=None, metavar="URL", help=DB_HELP)(fn)


FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option("--tls-cert", type=FILE, default=None,
              help="PEM certificate (chain) to serve HTTPS with; needs --tls-key.")
@click.option("--tls-key", type=FILE, default=None, help="PEM private key of --tls-cert.")
@db_option
def server(host: str, port: int, tls_cert: Path | None, tls_key: Path | None,
           db_url: str | None) -> None:
    """Run the central server (migrates the database first). See docs/tls.md."""
    from pos_loyalty.server.app import create_app
    from pos_loyalty.server.runner import serve_forever

    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    os.umask(0o077)  # databases, WAL files and logs we create: owner only
    tls = (tls_cert, tls_key) if tls_cert is not None and tls_key is not None else None
    with cli_errors():
        settings = Settings.from_env(db_url)
        app = create_app(settings)
        scheme = "https" if tls else "http"
        click.echo(f"pos-loyalty central on {scheme}://{host}:{port} "
                   "(OpenAPI at /openapi.json)", err=True)
        if tls is None and host not in ("127.0.0.1", "::1", "localhost"):
            click.echo("warning: plain HTTP on a network address; terminals will refuse it "
                       "unless enrolled with --insecure (see docs/tls.md)", err=True)
        serve_forever(app, host, port, tls=tls)


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
def held() -> None:
    """Events central stored but did not apply: list, release or reject them."""


@held.command("list")
@click.option("--store", "store_id", default=None, help="Only this store's events.")
@db_option
def held_list(store_id: str | None, db_url: str | None) -> None:
    """List held events, oldest first, with why each is held."""
    with open_central(db_url) as central, cli_errors():
        rows = central.held(store_id)
    click.echo(f"held events: {len(rows)}")
    for r in rows:
        click.echo(escape_controls(
            f"{r.event_id}\t{r.received_at:%Y-%m-%d %H:%M}\tstore {r.store_id}\tterminal "
            f"{r.terminal_id}\tmember {r.member_id}\t{r.kind} {r.points:+d}\t{r.reason}"))


def _resolve(event_id: str, reason: str, db_url: str | None, *, release: bool) -> None:
    with open_central(db_url) as central, cli_errors():
        row = central.resolve_held(event_id, release=release, note=reason)
    verb = "released: applied" if release else "rejected: never applied"
    click.echo(f"event {event_id} {verb} ({row.kind} {row.points:+d} for member "
               f"{row.member_id})")


@held.command("release")
@click.argument("event_id")
@click.option("--reason", required=True, help="Why store IT lets it through (kept).")
@db_option
def held_release(event_id: str, reason: str, db_url: str | None) -> None:
    """Apply a held event to its member's balance now."""
    _resolve(event_id, reason, db_url, release=True)


@held.command("reject")
@click.argument("event_id")
@click.option("--reason", required=True, help="Why store IT refuses it (kept).")
@db_option
def held_reject(event_id: str, reason: str, db_url: str | None) -> None:
    """Mark a held event rejected; it stays in the ledger and never counts."""
    _resolve(event_id, reason, db_url, release=False)


@admin.group()
def store() -> None:
    """Stores: the limits central enforces on their terminals' events."""


@store.command("policy")
@click.argument("store_id")
@click.option("--max-event-points", type=click.IntRange(0), default=None,
              help="Points one event may move (default 100,000).")
@click.option("--max-terminal-day-earn", type=click.IntRange(0), default=None,
              help="Points one terminal may award per day, central's UTC day (1,000,000).")
@click.option("--offline-member-cap", type=click.IntRange(0), default=None,
              help="Overdraft one member may run up at one terminal (500).")
@click.option("--offline-terminal-budget", type=click.IntRange(0), default=None,
              help="Overdraft all members may run up at one terminal (5,000).")
@click.option("--debit-other-stores/--no-debit-other-stores", default=None,
              help="Allow redeeming here for members who only ever shopped elsewhere.")
@db_option
def store_policy(store_id: str, db_url: str | None, **changes: Any) -> None:
    """Show a store's event limits, or change the ones given."""
    with open_central(db_url) as central, cli_errors():
        current = central.policy(store_id)
        wanted = {k: v for k, v in changes.items() if v is not None}
        if wanted:
            current = replace(current, **wanted)
            central.set_policy(store_id, current)
    for key, value in asdict(current).items():
        click.echo(f"{key} = {str(value).lower() if isinstance(value, bool) else value}")


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


@report.command("integrity")
@db_option
def report_integrity(db_url: str | None) -> None:
    """Check every balance equals the sum of its applied ledger rows; exit 1 if any differs."""
    with open_central(db_url) as central, cli_errors():
        bad = central.integrity()
    if not bad:
        click.echo("integrity: every balance equals the sum of its applied ledger rows")
        return
    for r in bad:
        what = "no balance row" if r.balance is None else f"balance {r.balance}"
        orphan = "" if r.member_exists else " (no such member)"
        click.echo(escape_controls(
            f"member {r.member_id}{orphan}: {what}, applied ledger sum {r.ledger_sum}"))
    raise click.ClickException(f"integrity: {len(bad)} member(s) differ")


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
            "review": [{k: _jsonable(v) for k, v in asdict(r).items()} for r in rep.review],
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
    click.echo(f"for review: {len(rep.review)}")
    for r in rep.review:
        click.echo(escape_controls(f"  {r.kind}: event {r.event_id} terminal {r.terminal_id} "
                                   f"store {r.store_id}: {r.detail}"))


@admin.group()
def user() -> None:
    """Console accounts: add the first administrator, list, disable, reset a password."""


def _cli_actor() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"[:64]
    except (KeyError, OSError):
        return "cli"


def _read_password(from_stdin: bool) -> str:
    import sys

    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    value: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


@user.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(["admin", "manager", "readonly"]), required=True,
              help="admin: anything; manager: only --store stores; readonly: sees, never changes.")
@click.option("--store", "stores", multiple=True, help="A store a manager looks after "
              "(repeat for several).")
@click.option("--name", "display_name", default="", help="The person's name, as shown.")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of standard input (no prompt).")
@db_option
def user_add(username: str, role: str, stores: tuple[str, ...], display_name: str,
             password_stdin: bool, db_url: str | None) -> None:
    """Create a console account (the first administrator is made this way)."""
    from pos_loyalty.server.console.accounts import ConsoleAccounts

    password = _read_password(password_stdin)
    with open_central(db_url) as central, cli_errors():
        made = ConsoleAccounts(central).add_user(
            username, password, role, actor=_cli_actor(), stores=stores,
            display_name=display_name)
    where = f" for {', '.join(made.stores)}" if made.stores else ""
    click.echo(f"user {made.username} added ({made.role}{where}); sign in at /console/")


@user.command("list")
@db_option
def user_list(db_url: str | None) -> None:
    """List console accounts with role, stores and status."""
    from pos_loyalty.server.console.accounts import ConsoleAccounts

    with open_central(db_url) as central, cli_errors():
        rows = ConsoleAccounts(central).users()
    click.echo("USER\tROLE\tSTATUS\tSTORES\tNAME")
    for r in rows:
        click.echo(f"{r.username}\t{r.role}\t{'active' if r.active else 'disabled'}\t"
                   f"{escape_controls(','.join(r.stores)) or '-'}\t"
                   f"{escape_controls(r.display_name)}")


@user.command("disable")
@click.argument("username")
@db_option
def user_disable(username: str, db_url: str | None) -> None:
    """Stop an account signing in; its open sessions end at once."""
    from pos_loyalty.server.console.accounts import ConsoleAccounts

    with open_central(db_url) as central, cli_errors():
        ConsoleAccounts(central).set_active(username, False,
                                                                  actor=_cli_actor())
    click.echo(f"user {username} disabled")


@user.command("password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True,
              help="Read the new password from the first line of standard input.")
@db_option
def user_password(username: str, password_stdin: bool, db_url: str | None) -> None:
    """Set a new password; the account's open sessions end."""
    from pos_loyalty.server.console.accounts import ConsoleAccounts

    password = _read_password(password_stdin)
    with open_central(db_url) as central, cli_errors():
        ConsoleAccounts(central).set_password(username, password,
                                                                    actor=_cli_actor())
    click.echo(f"password of {username} changed")


@admin.group()
def catalog() -> None:
    """The product catalog the phone pages show (see docs/phone.md for the folder format)."""


@catalog.command("load")
@click.argument("source", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--into", "target", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="The served catalog folder (default: [catalog] dir of the "
              "file POS_LOYALTY_PHONE_CONFIG names).")
def catalog_load(source: Path, target: Path | None) -> None:
    """Check a catalog folder and make it the one central serves (swapped in whole)."""
    from pos_loyalty.catalog.folder import install_catalog
    from pos_loyalty.server.config import load_phone_config

    with cli_errors():
        if target is None:
            phone_file = os.environ.get("POS_LOYALTY_PHONE_CONFIG")
            if not phone_file:
                raise ConfigError("no --into, and POS_LOYALTY_PHONE_CONFIG is not set",
                                  key="catalog.dir")
            target = load_phone_config(phone_file).catalog_dir
            if target is None:
                raise ConfigError("no catalog folder configured", path=phone_file,
                                  key="catalog.dir")
        products = install_catalog(source, target)
    click.echo(f"catalog of {len(products)} products now served from {target}")
