"""``pos-loyalty enroll``: exchange a one-time code for this terminal's credential, bootstrap."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

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


@click.command()
@click.argument("url")
@click.argument("code")
@click.option("--db", "db_url", default=None, metavar="URL",
              help="Terminal database (default: POS_LOYALTY_TERMINAL_DB or the data dir).")
@click.option("--bootstrap/--no-bootstrap", default=True, show_default=True,
              help="Pull members, cards, balances, tiers and programs right away.")
def enroll(url: str, code: str, db_url: str | None, bootstrap: bool) -> None:
    """Enroll this terminal with the central server at URL using a one-time CODE."""
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

    if not url.startswith(("http://", "https://")):
        raise click.UsageError(f"URL must start with http:// or https://, got {url!r}")
    with _errors():
        terminal_url = db_url or default_terminal_url()
        upgrade_terminal(terminal_url)
        store = LocalStore(terminal_url)
        try:
            with SyncClient(url) as anon:
                answer = anon.enroll(code)
            store.set_enrollment(server_url=url, terminal_id=str(answer["terminal_id"]),
                                 store_id=str(answer["store_id"]),
                                 credential=str(answer["credential"]))
            click.echo(f"enrolled as terminal {answer['terminal_id']} of store "
                       f"{answer['store_id']}")
            if not bootstrap:
                return
            with SyncClient(url, str(answer["credential"])) as client, Progress(
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
