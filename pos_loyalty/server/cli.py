"""Commands of the central server: ``server``, ``db``, ``admin``, ``report``."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import click

from pos_loyalty.errors import ConfigError, LoyaltyError
from pos_loyalty.server.central import CentralStore, secure_sqlite_file
from pos_loyalty.server.config import Settings, default_central_url
from pos_loyalty.server.logs import escape_controls
from pos_loyalty.server.members.queries import MemberDetail, MemberRow

DB_HELP = "Central database URL (default: POS_LOYALTY_DB_URL or a SQLite file in the data dir)."


@contextmanager
def cli_errors(*, file_given: bool = False) -> Iterator[None]:
    """Domain errors become one line: exit 2 for configuration, 1 otherwise. With
    ``file_given`` (a program file the command was asked to check) a ConfigError is the
    command's answer, not a usage error: exit 1, the file's line and key."""
    try:
        yield
    except ConfigError as exc:
        if file_given:
            raise click.ClickException(str(exc)) from exc
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
        click.echo("admin API /v1/admin: " + ("on (bearer POS_LOYALTY_ADMIN_TOKEN)"
                                             if settings.admin_token else
                                             "off (set POS_LOYALTY_ADMIN_TOKEN to serve it)"),
                   err=True)
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
@click.option("--stale-after", default=300, show_default=True, type=click.IntRange(1),
              help="Seconds without contact after which a terminal is flagged STALE.")
@db_option
def terminal_list(stale_after: int, db_url: str | None) -> None:
    """List terminals with their last heartbeat; STALE when silent too long."""
    with open_central(db_url) as central, cli_errors():
        rows = central.list_terminals(stale_after_s=stale_after)
    click.echo(_table(TERMINAL_HEADERS, [t.cells() for t in rows]))


TERMINAL_HEADERS = ("TERMINAL", "STORE", "STATUS", "SEEN", "FLAG", "VERSION", "PROGRAM",
                    "READER", "TILL", "OUTBOX", "OLDEST UNSENT", "LAST SYNC", "OFFSET MS",
                    "HELD", "CONFLICTS", "LAST ERROR")


def _table(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """Columns padded to their widest cell, a header line first (control bytes escaped)."""
    cells = [tuple(escape_controls(c) for c in r) for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
              for r in cells]
    return "\n".join(lines)


def _actor() -> str:
    """Who runs this command, for the audit trail of central adjustments."""
    try:
        return os.getlogin()
    except OSError:
        import getpass

        return getpass.getuser()


@admin.group()
def member() -> None:
    """Members and their cards."""


@member.command("add")
@click.argument("member_id")
@click.option("--name", default="", help="Display name.")
@click.option("--email", default="", help="E-mail address.")
@click.option("--card", "card_id", default=None, help="Card number to issue.")
@click.option("--uid", default=None, help="Card UID (hex) for UID-only cards.")
@click.option("--tier", default=None)
@click.option("--birthday", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="YYYY-MM-DD.")
@click.option("--points", default=0, type=int, help="Opening balance (a central adjustment).")
@click.option("--terminal-config", type=click.Path(dir_okay=False), default=None,
              help="A standalone shop (no central): add the member to the store of the "
                   "terminal this config names (needs --card).")
@db_option
def member_add(member_id: str, name: str, email: str, card_id: str | None, uid: str | None,
               tier: str | None, birthday: datetime | None, points: int,
               terminal_config: str | None, db_url: str | None) -> None:
    """Add a new member, optionally with a card and opening points (see `update`)."""
    if terminal_config is not None:
        _add_local_member(terminal_config, member_id, name, card_id, uid, tier)
        return
    with open_central(db_url) as central, cli_errors():
        central.add_member(member_id, name, card_id=card_id, uid=uid, tier=tier, email=email,
                           birthday=birthday.date() if birthday else None)
        if points:
            central.adjust_points(member_id, points, "opening balance", actor=_actor())
    click.echo(f"member {member_id} added")


def _add_local_member(config_file: str, member_id: str, name: str, card_id: str | None,
                      uid: str | None, tier: str | None) -> None:
    """A member on a terminal that has no central: into its own store, as the daemon reads
    it. An enrolled terminal gets its members from central, so it is refused here."""
    from pos_loyalty.config import load_config
    from pos_loyalty.migrations import upgrade_terminal
    from pos_loyalty.server.members.queries import check_id
    from pos_loyalty.store.local import LocalStore

    if card_id is None:
        raise click.UsageError("a member on a standalone terminal needs --card")
    with cli_errors():
        check_id(member_id, "member")
        check_id(card_id, "card")
        config = load_config(config_file)
        config.data_dir.mkdir(parents=True, exist_ok=True)
        upgrade_terminal(config.resolved_db_url)
        store = LocalStore(config.resolved_db_url)
        try:
            ident = store.sync_identity()
            if ident.server_url:
                raise click.ClickException(
                    f"this terminal is enrolled with {ident.server_url}: add members there")
            if store.member_view(member_id) is not None:
                raise click.ClickException(f"member {member_id} already exists")
            if store.find_by_card(card_id) is not None:
                raise click.ClickException(f"card {card_id} is already issued")
            store.add_member(member_id, name, card_id=card_id, uid=uid, tier=tier)
        finally:
            store.close()
    click.echo(f"member {member_id} added to the terminal store {config.resolved_db_url}")


def _show(d: MemberDetail) -> None:
    state = d.status + (" (anonymous: not yet claimed)" if d.anonymous else "")
    if d.merged_into:
        state += f" into {d.merged_into}"
    fields = (("member", d.member_id), ("name", d.display_name or "-"),
              ("email", d.email or "-"), ("tier", d.tier or "-"),
              ("birthday", d.birthday.isoformat() if d.birthday else "-"), ("status", state),
              ("consent", d.consent_at.isoformat(timespec="seconds") if d.consent_at else "no"),
              ("balance", str(d.balance)))
    for label, value in fields:  # each value escaped, so a name cannot forge a line
        click.echo(f"{label:<8} {escape_controls(value)}")
    click.echo("cards    " + (", ".join(f"{c.card_id} ({c.status})" for c in d.cards) or "-"))
    if d.history:
        click.echo("history")
        click.echo(_table(("TIME", "KIND", "POINTS", "STATUS", "TERMINAL", "REFERENCE"), [
            (h.terminal_time.isoformat(timespec="seconds"), h.kind, f"{h.points:+d}",
             h.status, h.terminal_id, h.txn_ref) for h in d.history]))


@member.command("show")
@click.argument("member_id")
@click.option("--history", default=20, show_default=True, type=click.IntRange(0, 1000))
@db_option
def member_show(member_id: str, history: int, db_url: str | None) -> None:
    """Show a member: details, balance, cards and latest ledger rows."""
    with open_central(db_url) as central, cli_errors():
        _show(central.get_member(member_id, history=history))


MEMBER_HEADERS = ("MEMBER", "NAME", "TIER", "STATUS", "BALANCE")


def _member_cells(r: MemberRow) -> tuple[str, ...]:
    name = r.display_name or ("(anonymous)" if r.anonymous else "-")
    return (r.member_id, name, r.tier or "-", r.status, str(r.balance))


@member.command("search")
@click.argument("query")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 200))
@db_option
def member_search(query: str, limit: int, db_url: str | None) -> None:
    """Members whose id, card id or name starts with QUERY (name ignores case)."""
    with open_central(db_url) as central, cli_errors():
        rows = central.search_members(query, limit=limit)
    if not rows:
        raise click.ClickException(f"no member matches {query!r}")
    click.echo(_table(MEMBER_HEADERS, [_member_cells(r) for r in rows]))


@member.command("list")
@click.option("--after", default="", help="Start after this member id (paging).")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--anonymous", is_flag=True, help="Only unclaimed card-first members.")
@db_option
def member_list(after: str, limit: int, anonymous: bool, db_url: str | None) -> None:
    """List members in id order, a page at a time."""
    with open_central(db_url) as central, cli_errors():
        rows = central.list_members(after=after, limit=limit,
                                    anonymous=True if anonymous else None)
    click.echo(_table(MEMBER_HEADERS, [_member_cells(r) for r in rows]))


@member.command("update")
@click.argument("member_id")
@click.option("--name", default=None, help="Display name (claims an anonymous member).")
@click.option("--email", default=None)
@click.option("--tier", default=None, help="Tier; an empty string clears it.")
@click.option("--birthday", default=None, help="YYYY-MM-DD; an empty string clears it.")
@click.option("--consent/--no-consent", default=None,
              help="The member agreed (or withdrew) to be kept on file.")
@db_option
def member_update(member_id: str, name: str | None, email: str | None, tier: str | None,
                  birthday: str | None, consent: bool | None, db_url: str | None) -> None:
    """Change only the fields given; every other field stays as it is."""
    changes: dict[str, Any] = {}
    if tier is not None:
        changes["tier"] = tier or None
    if birthday is not None:
        try:
            changes["birthday"] = date.fromisoformat(birthday) if birthday else None
        except ValueError as exc:
            raise click.BadParameter("must be YYYY-MM-DD", param_hint="--birthday") from exc
    with open_central(db_url) as central, cli_errors():
        d = central.update_member(member_id, display_name=name, email=email, consent=consent,
                                  **changes)
    click.echo(f"member {member_id} updated")
    _show(d)


@member.command("import")
@click.argument("csv_file", type=FILE)
@db_option
def member_import(csv_file: Path, db_url: str | None) -> None:
    """Add or update members from a CSV (header: member_id, display_name, email, tier,
    birthday, card_id; only the columns present change). The whole file is checked first."""
    from pos_loyalty.server.members.queries import parse_import

    with cli_errors():
        try:
            text = csv_file.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise click.ClickException(f"cannot read {csv_file}: {exc}") from exc
        rows = parse_import(text, str(csv_file))
    with open_central(db_url) as central, cli_errors():
        res = central.import_members(rows, source=str(csv_file))
    click.echo(f"imported {csv_file}: {res.created} added, {res.updated} updated")


@member.command("export")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write here (default: standard output).")
@db_option
def member_export(output: Path | None, db_url: str | None) -> None:
    """Every member as CSV (the import's columns plus status, balance and cards)."""
    import csv
    import sys

    from pos_loyalty.server.members.queries import EXPORT_COLUMNS

    with open_central(db_url) as central, cli_errors():
        out = output.open("w", newline="", encoding="utf-8") if output else sys.stdout
        try:
            w = csv.writer(out)
            w.writerow(EXPORT_COLUMNS)
            n = 0
            for row in central.export_members():
                w.writerow(row)
                n += 1
        finally:
            if output:
                out.close()
    if output:
        click.echo(f"exported {n} members to {output}", err=True)


@member.command("merge")
@click.argument("source")
@click.argument("target")
@db_option
def member_merge(source: str, target: str, db_url: str | None) -> None:
    """Fold SOURCE into TARGET: its cards and points move over, SOURCE is marked merged."""
    with open_central(db_url) as central, cli_errors():
        moved = central.merge_members(source, target, actor=_actor())
    click.echo(f"member {source} merged into {target} ({moved} points moved)")


@admin.group()
def points() -> None:
    """Points: adjustments by store IT, each an audited ledger event."""


@points.command("adjust", context_settings={"ignore_unknown_options": True})
@click.argument("member_id")
@click.argument("delta", type=int)
@click.option("--reason", required=True, help="Why (kept on the ledger row).")
@db_option
def points_adjust(member_id: str, delta: int, reason: str, db_url: str | None) -> None:
    """Give (+N) or take (-N) points; refused if it would take the balance below zero."""
    with open_central(db_url) as central, cli_errors():
        event_id = central.adjust_points(member_id, delta, reason, actor=_actor(),
                                         allow_negative=False)
        balance = central.balance(member_id)
    click.echo(f"member {member_id}: {delta:+d} points ({reason}); balance {balance}; "
               f"event {event_id}")


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
    if rows:
        click.echo(_table(("EVENT", "RECEIVED (UTC)", "STORE", "TERMINAL", "MEMBER", "KIND",
                           "POINTS", "REASON"), [
            (r.event_id, f"{r.received_at:%Y-%m-%d %H:%M}", r.store_id, r.terminal_id,
             r.member_id, r.kind, f"{r.points:+d}", r.reason) for r in rows]))


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
    """Cards: block a lost card and replace it, revoke, hand out blank cards."""


@card.command("revoke")
@click.argument("card_id")
@db_option
def card_revoke(card_id: str, db_url: str | None) -> None:
    """Revoke a card; terminals refuse it after their next pull."""
    with open_central(db_url) as central, cli_errors():
        if not central.set_card_status(card_id, "revoked"):
            raise click.ClickException(f"no card {card_id}")
    click.echo(f"card {card_id} revoked")


@card.command("block")
@click.argument("card_id")
@click.option("--replace-with", "new_card", default=None,
              help="Issue this card to the same member (keeps the balance).")
@click.option("--uid", default=None, help="UID (hex) of the replacement card.")
@db_option
def card_block(card_id: str, new_card: str | None, uid: str | None,
               db_url: str | None) -> None:
    """Block a lost card, optionally issuing its member a replacement at once."""
    with open_central(db_url) as central, cli_errors():
        if new_card is not None:
            member_id = central.replace_card(card_id, new_card, uid=uid)
            click.echo(f"card {card_id} blocked; card {new_card} issued to member "
                       f"{member_id} (balance {central.balance(member_id)} kept)")
            return
        if not central.set_card_status(card_id, "blocked"):
            raise click.ClickException(f"no card {card_id}")
    click.echo(f"card {card_id} blocked")


@card.command("issue")
@click.argument("member_id")
@click.argument("card_id")
@click.option("--uid", default=None, help="Card UID (hex) for UID-only cards.")
@click.option("--move", is_flag=True,
              help="Take the card from the member who holds it (written to the audit log); "
                   "without it, a card held by another member is refused.")
@db_option
def card_issue(member_id: str, card_id: str, uid: str | None, move: bool,
               db_url: str | None) -> None:
    """Give a member another card (or, with --move, one another member holds)."""
    with open_central(db_url) as central, cli_errors():
        moved_from = central.issue_card(member_id, card_id, uid=uid, move=move,
                                        actor=_cli_actor())
    if moved_from is not None:
        click.echo(f"card {card_id} moved from member {moved_from} to member {member_id}")
    else:
        click.echo(f"card {card_id} issued to member {member_id}")


@card.command("blank")
@click.argument("card_ids", nargs=-1, required=True)
@db_option
def card_blank(card_ids: tuple[str, ...], db_url: str | None) -> None:
    """Register blank member cards to hand out at the till: each starts an anonymous
    member (A-<card>) that earns from its first tap; claim it later with `member update`."""
    with open_central(db_url) as central, cli_errors():
        n = central.issue_blank_cards(card_ids)
    click.echo(f"{n} blank cards ready (anonymous members A-<card id>)")


@admin.group()
def program() -> None:
    """Programs: validate, dry-run, publish (per store, scheduled), diff, roll back."""


def _read_program(path: Path) -> str:
    """A UTF-8 text file given on the command line (a program, or its sales), or one line
    saying why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"cannot read {path}: {exc}") from exc


def _when(value: str | None) -> datetime | None:
    """--at: ISO 8601; with an offset it is converted to UTC, without one it is UTC."""
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time",
                                 param_hint="--at") from exc
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t


@program.command("validate")
@click.argument("file", type=FILE)
def program_validate(file: Path) -> None:
    """Check a program file; errors name the line and key."""
    from pos_loyalty.server.programs.queries import validate

    with cli_errors(file_given=True):
        prog = validate(_read_program(file), str(file))
    click.echo(f"{file}: program {prog.name!r} is valid ({len(prog.active_rules)} rules)")


@program.command("publish")
@click.argument("file", type=FILE)
@click.option("--store", "stores", multiple=True, help="Only this store (repeatable; "
              "default: the whole chain).")
@click.option("--at", "at", default=None, metavar="TIME",
              help="Start time, ISO 8601 (default: now). Without an offset: UTC.")
@click.option("--note", default="", help="Why (kept with the version).")
@db_option
def program_publish(file: Path, stores: tuple[str, ...], at: str | None, note: str,
                    db_url: str | None) -> None:
    """Publish a program as a new version; terminals apply it from its start time."""
    text = _read_program(file)
    with open_central(db_url) as central, cli_errors(file_given=True):
        v = central.publish_program(text, stores=stores, at=_when(at), note=note,
                                    source=str(file))
    where = ", ".join(v.stores) or "the whole chain"
    state = "live now" if v.live else f"starts {v.starts_at.isoformat(timespec='seconds')} UTC"
    click.echo(f"published {v.name!r} as version {v.version} for {where}: {state}")


@program.command("list")
@db_option
def program_list(db_url: str | None) -> None:
    """Every published version, oldest first."""
    with open_central(db_url) as central, cli_errors():
        rows = central.program_versions()
    click.echo(_table(("VERSION", "NAME", "STORES", "STARTS (UTC)", "STATE", "NOTE"), [
        (str(v.version), v.name, ",".join(v.stores) or "chain",
         v.starts_at.isoformat(timespec="seconds"), "live" if v.live else "scheduled",
         v.note or "-") for v in rows]))


@program.command("show")
@click.argument("version", type=int, required=False)
@click.option("--store", "store_id", default=None, help="The version live for this store.")
@db_option
def program_show(version: int | None, store_id: str | None, db_url: str | None) -> None:
    """Print a version's program file (default: the one live for the chain or --store)."""
    with open_central(db_url) as central, cli_errors():
        if version is None:
            v = central.live_program(store_id)
            if v is None:
                raise click.ClickException("no program published yet (terminals run the "
                                           "built-in 1 pt per 1.00)")
        else:
            v = central.program_version(version)
    click.echo(f"# version {v.version}: {v.name} for {', '.join(v.stores) or 'the chain'}, "
               f"from {v.starts_at.isoformat(timespec='seconds')} UTC", err=True)
    click.echo(v.body, nl=False)


@program.command("diff")
@click.argument("old", type=int)
@click.argument("new", type=int)
@db_option
def program_diff(old: int, new: int, db_url: str | None) -> None:
    """What changes from version OLD to version NEW, in words."""
    with open_central(db_url) as central, cli_errors():
        lines = central.diff_programs(old, new)
    click.echo("\n".join(lines) if lines else "no difference")


@program.command("dry-run")
@click.argument("file", type=FILE)
@click.option("--sales", "sales_file", type=FILE, default=None,
              help="Past sales (CSV or JSON lines, as `pos-loyalty rules replay` reads); "
              "without it, the sales terminals pushed to central (needs --days).")
@click.option("--days", type=click.IntRange(1), default=None,
              help="Only the sales of the last N days.")
@click.option("--store", "store_id", default=None, help="Compare with this store's live "
              "program (default: the chain's); with central's sales, only this store's.")
@db_option
def program_dry_run(file: Path, sales_file: Path | None, days: int | None,
                    store_id: str | None, db_url: str | None) -> None:
    """Replay past sales under FILE and under the live program: points, discounts, cost."""
    from pos_loyalty.rules.cli import render_replay

    if sales_file is None and days is None:
        raise click.UsageError("give --sales FILE, or --days N to replay central's sales")
    text = _read_program(file)
    with open_central(db_url) as central, cli_errors(file_given=True):
        if sales_file is None:
            run = central.dry_run_program(text, None, days=days, store_id=store_id,
                                          source=str(file))
        else:
            fmt: Any = "jsonl" if sales_file.suffix in (".jsonl", ".json") else "csv"
            lines = _read_program(sales_file).splitlines()  # not UTF-8: one line, no trace
            run = central.dry_run_program(text, lines, fmt, days=days, store_id=store_id,
                                          source=str(file), sales_source=str(sales_file))
    live = f"version {run.live_version}" if run.live_version else "the built-in program"
    click.echo(f"dry run of {file} against {live} over {run.candidate.sales} sales")
    click.echo(render_replay(run.candidate, run.live))


@program.command("rollback")
@click.argument("version", type=int)
@click.option("--store", "stores", multiple=True,
              help="Only these stores (default: the stores VERSION went to).")
@db_option
def program_rollback(version: int, stores: tuple[str, ...], db_url: str | None) -> None:
    """Make an earlier version live again now (published as a new version)."""
    with open_central(db_url) as central, cli_errors():
        v = central.rollback_program(version, stores=stores or None)
    click.echo(f"rolled back to version {version}: live now as version {v.version} "
               f"for {', '.join(v.stores) or 'the whole chain'}")


@click.group()
def report() -> None:
    """Reports for store IT (integrity, reconcile, offers) and the owner's reports over
    central's sales (see docs/reports.md)."""


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


def _owner_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    options: list[Any] = [
        click.option("--format", "fmt", type=click.Choice(["text", "csv", "html"]),
                     default="text", show_default=True),
        click.option("--store", "stores", multiple=True,
                     help="Only this store (repeat for several)."),
        click.option("--since", type=click.DateTime(["%Y-%m-%d"]), default=None,
                     help="First day (default: 364 days before --until)."),
        click.option("--until", type=click.DateTime(["%Y-%m-%d"]), default=None,
                     help="Last day (default: today, UTC)."),
        click.option("--after", "lapsed_after", type=click.IntRange(1), default=None,
                     help="lapsed: not seen for more than this many days (default 90)."),
        click.option("--own-return-rate", type=click.FloatRange(0, 1), default=0.25,
                     show_default=True, help="cost: share of repeat visits that would "
                     "happen without the program."),
        click.option("--limit", type=click.IntRange(1, 100_000), default=200,
                     show_default=True, help="lapsed: longest call list."),
        click.option("--lang", type=click.Choice(["en", "he"]), default="en",
                     show_default=True, help="html: the page's language."),
        click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
                     default=None, help="Write to this file instead of standard output."),
        db_option,
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def report_owner(name: str, fmt: str, stores: tuple[str, ...], since: datetime | None,
                 until: datetime | None, lapsed_after: int | None, own_return_rate: float,
                 limit: int, lang: str, output: Path | None, db_url: str | None) -> None:
    """The owner's reports over central's sales (see docs/reports.md)."""
    from pos_loyalty.insight import render
    from pos_loyalty.server.sales import reports

    opts = reports.Options(since=since.date() if since else None,
                           until=until.date() if until else None, stores=stores,
                           lapsed_after_days=lapsed_after, own_return_rate=own_return_rate,
                           limit=limit)
    names = reports.NAMES if name == "all" else (name,)
    with open_central(db_url) as central, cli_errors():
        built = reports.build_all(central, opts, names)
    if fmt == "text":
        out = render.text(built)
    elif fmt == "csv":
        out = render.csv_text(built)
    else:
        from pos_loyalty.server.console.pages.reports import standalone_html

        out = standalone_html(built, lang)
    if output is None:
        click.echo(out, nl=not out.endswith("\n"))
    else:
        try:
            output.write_text(out, encoding="utf-8")
        except OSError as exc:
            raise click.ClickException(f"cannot write {output}: {exc.strerror}") from exc
        click.echo(f"wrote {output}", err=True)


OWNER_HELP = {
    "customers": "Repeat-customer rate, frequency, recency, spend per member, members' share.",
    "stages": "Members by journey stage (first visit, one-off, repeat, regular, loyal).",
    "segments": "Members by RFM segment.",
    "lapsed": "Lapsed regulars as a call list, with last stores and favourite categories.",
    "nps": "Net Promoter Score over time, per store and product, with comments.",
    "liability": "Outstanding points, their value, redemption rate and expiry schedule.",
    "cost": "Program cost against the extra revenue from members, per rule.",
    "settlement": "Coalition partners' settlement totals.",
    "tags": "Product tag taps and first-tap rate per product.",
    "all": "Every owner report in one.",
}


def _register_owner_report(name: str) -> None:
    @report.command(name, help=OWNER_HELP[name] + " See docs/reports.md.")
    @_owner_options
    def command(**kw: Any) -> None:
        report_owner(name, **kw)


for _name in OWNER_HELP:  # the owner's reports (server/sales/reports.py NAMES) and "all"
    _register_owner_report(_name)


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


# -- personal offers and the cashier's line (docs/offers.md) --------------------------------


@admin.group("offers")
def offers_group() -> None:
    """Personal offers: member-bound coupons for the members a target selects."""


@offers_group.command("run")
@click.argument("file", type=FILE)
@click.option("--dry-run", is_flag=True, help="Only say who would get what; issue nothing.")
@click.option("--list", "show_members", is_flag=True, help="List the members of each offer.")
@db_option
def offers_run(file: Path, dry_run: bool, show_members: bool, db_url: str | None) -> None:
    """Issue each offer of FILE to the members its target selects (capped, audited)."""
    from pos_loyalty.offers.file import load_offers
    from pos_loyalty.server.offers.run import outcome_rows, run_offers

    with open_central(db_url) as central, cli_errors(file_given=True):
        offers = load_offers(file)
        rep = run_offers(central, offers, dry_run=dry_run, actor=_actor())
    click.echo(_table(("offer", "coupon", "matched", "capped", "issued", "note"),
                      outcome_rows(rep)))
    if show_members:
        for o in rep.outcomes:
            click.echo(escape_controls(f"{o.offer_id}: {' '.join(o.members) or '-'}"))
    if not dry_run:
        click.echo(f"run {rep.run_id}: {sum(o.issued for o in rep.outcomes)} coupons "
                   f"issued, {rep.expired} expired offers closed")


@offers_group.command("lines")
@click.argument("file", type=FILE)
@db_option
def offers_lines(file: Path, db_url: str | None) -> None:
    """Recompute every member's cashier's line by the [cashier] rules of FILE."""
    from pos_loyalty.offers.file import load_offers
    from pos_loyalty.server.offers.lines import member_visits, refresh_lines

    with open_central(db_url) as central, cli_errors(file_given=True):
        rules = load_offers(file).cashier
        today = central.clock().date()
        written = refresh_lines(central, rules,
                                member_visits(central, today, rules.history_days), today)
    click.echo(f"cashier's lines: {written} changed")


@report.command("offers")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Only offers issued on or after this day.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@db_option
def report_offers(since: datetime | None, as_json: bool, db_url: str | None) -> None:
    """Take-up and cost of each offer: issued, used, expired, discount given, and what
    the sales that used it were paid (central's sales)."""
    from pos_loyalty.server.offers import queries as offer_q

    with open_central(db_url) as central, cli_errors():
        figures = offer_q.figures(central, central.clock(), since)
    if as_json:
        click.echo(json.dumps([{**asdict(f), "take_up_pct": round(f.take_up_pct, 1)}
                               for f in figures], indent=2))
        return
    rows: list[tuple[str, ...]] = [
        (f.offer_id, str(f.issued), str(f.used), f"{f.take_up_pct:.1f}%", str(f.expired),
         str(f.live), _money(f.discount), _money(f.discount // f.used if f.used else 0),
         _money(f.revenue), str(f.reuses)) for f in figures]
    click.echo(_table(("offer", "issued", "used", "take-up", "expired", "live", "discount",
                       "per use", "paid", "reused"), rows))


def _money(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}" if minor >= 0 else f"-{_money(-minor)}"


@click.command("chain")
@click.option("--stores", type=click.IntRange(1, 999), default=5, show_default=True)
@click.option("--members", type=click.IntRange(0, 10_000_000), default=1000,
              show_default=True)
@click.option("--days", type=click.IntRange(1, 3660), default=365, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True,
              help="The same seed makes the same chain.")
@click.option("--end", type=click.DateTime(["%Y-%m-%d"]), default="2026-11-30",
              show_default=True, help="The last day of sales.")
@db_option
def sim_chain(stores: int, members: int, days: int, seed: int, end: datetime,
              db_url: str | None) -> None:
    """Generate a synthetic chain into an empty central database: members with habits,
    a year of sales and refunds, points, NPS answers and tag taps (for reports, benches
    and the demo)."""
    import time

    from pos_loyalty.insight.chain import PROGRAM, ChainSpec
    from pos_loyalty.server.sales.bulk import write_chain

    began = time.monotonic()
    spec = ChainSpec(stores=stores, members=members, days=days, seed=seed, end=end.date())
    with open_central(db_url) as central, cli_errors():
        counts = write_chain(central, spec, lambda c: click.echo(
            f"  {c['members']} members, {c['sales']} sales...", err=True))
        central.publish_program(PROGRAM, note="sim chain")
    click.echo(f"generated in {time.monotonic() - began:.1f} s: " + ", ".join(
        f"{n} {table}" for table, n in counts.items()))
