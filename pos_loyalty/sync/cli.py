"""``pos-loyalty enroll``: exchange a one-time code for this terminal's credential, bootstrap."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import click

from pos_loyalty.errors import ConfigError, LoyaltyError


def default_terminal_url() -> str:
    """``POS_LOYALTY_TERMINAL_DB``, else ``terminal.db`` in the data directory."""
    env = os.environ.get("POS_LOYALTY_TERMINAL_DB")
    if env:
        return env
    from pos_loyalty.config import default_data_dir

    data = default_data_dir()
    data.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{data / 'terminal.db'}"


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    except LoyaltyError as exc:
        raise click.ClickException(str(exc)) from exc


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses: plain HTTP never leaves the machine."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_server_url(url: str, *, insecure: bool) -> None:
    """https:// anywhere; http:// only to this machine unless ``insecure``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.UsageError(
            f"URL must start with https:// (or http:// to this machine), got {url!r}")
    if parts.scheme == "http" and not insecure and not is_loopback(parts.hostname):
        raise click.UsageError(
            f"refusing plain HTTP to {parts.hostname}: the enrollment code and the terminal's "
            "credential would travel in clear. Use https:// (see docs/tls.md), or pass "
            "--insecure on a network you trust.")


@click.command()
@click.argument("url")
@click.argument("code")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="The daemon's config file: enroll into its database ([store] url or "
                   "[terminal] data_dir) with its [sync] ca_file.")
@click.option("--db", "db_url", default=None, metavar="URL",
              help="Terminal database (default: from --config, else POS_LOYALTY_TERMINAL_DB "
                   "or the data dir).")
@click.option("--bootstrap/--no-bootstrap", default=True, show_default=True,
              help="Pull members, cards, balances, tiers and programs right away.")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="PEM CA certificate(s) to verify central's certificate with (default: "
                   "POS_LOYALTY_CA_FILE, else the system's trust store).")
@click.option("--insecure", is_flag=True,
              help="Allow plain http:// to a host other than this machine.")
def enroll(url: str, code: str, config_file: str | None, db_url: str | None, bootstrap: bool,
           ca_file: str | None, insecure: bool) -> None:
    """Enroll this terminal with the central server at URL using a one-time CODE.

    With ``--config`` the credential goes into the database ``pos-loyalty run --config``
    opens, so the daemon (e.g. under systemd, as its own user) finds it.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TimeElapsedColumn,
    )

    from pos_loyalty.migrations import upgrade_terminal
    from pos_loyalty.store.local import LocalStore
    from pos_loyalty.sync.client import SyncClient, run_sync

    check_server_url(url, insecure=insecure)
    with _errors():
        if config_file is not None:
            from pos_loyalty.config import load_config

            config = load_config(config_file)
            config.data_dir.mkdir(parents=True, exist_ok=True)
            db_url = db_url or config.resolved_db_url
            ca_file = ca_file or config.sync_ca_file
        terminal_url = db_url or default_terminal_url()
        upgrade_terminal(terminal_url)
        store = LocalStore(terminal_url)
        try:
            with SyncClient(url, ca_file=ca_file) as anon:
                answer = anon.enroll(code)
            store.set_enrollment(server_url=url, terminal_id=str(answer["terminal_id"]),
                                 store_id=str(answer["store_id"]),
                                 credential=str(answer["credential"]))
            click.echo(f"enrolled as terminal {answer['terminal_id']} of store "
                       f"{answer['store_id']}")
            if not bootstrap:
                return
            with SyncClient(url, str(answer["credential"]), ca_file=ca_file) as client, Progress(
                "[progress.description]{task.description}", BarColumn(),
                MofNCompleteColumn(), TimeElapsedColumn(), transient=False,
            ) as bar:
                tasks: dict[str, TaskID] = {}

                def progress(entity: str, done: int, total: int) -> None:
                    if entity not in tasks:
                        tasks[entity] = bar.add_task(entity, total=total or 1)
                    bar.update(tasks[entity], completed=done if total else 1, total=total or 1)

                report = run_sync(store, client, progress=progress, page=20_000)
            click.echo("bootstrap done: " + ", ".join(
                f"{n} {e}" for e, n in report.pulled.items()))
        finally:
            store.close()
