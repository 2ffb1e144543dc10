"""``pos-loyalty run`` and ``pos-loyalty demo``."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from dataclasses import replace
from types import FrameType
from typing import Literal

import click

from pos_loyalty.config import BAUDRATES, check_card_keys, load_config, with_overrides
from pos_loyalty.errors import ConfigError, LoyaltyError


@click.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="Terminal config file (TOML). Without it, embedded defaults are used.")
@click.option("--serial", help="Serial port of the till, e.g. /dev/ttyUSB0 or /dev/pts/3.")
@click.option("--reader", help="NFC reader path: usb, tty:USB0:pn532, udp:127.0.0.1:PORT.")
@click.option("--db", help="Local store URL, e.g. sqlite:///terminal.db.")
@click.option("--baud", type=click.Choice([str(b) for b in sorted(BAUDRATES)]),
              help="Till line speed (default 115200, or serial.baudrate in the config).")
@click.option("--demo-members", is_flag=True,
              help="Seed the demo members into an empty store (for simulated setups).")
@click.option("--simulation", is_flag=True,
              help="Simulated hardware: trust the published demo card keys (never in a shop).")
@click.option("-v", "--verbose", is_flag=True,
              help="Log debug details, libraries' included.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="json: one object per line, for journald and shippers.")
def run(config_file: str | None, serial: str | None, reader: str | None, db: str | None,
        baud: str | None, demo_members: bool, simulation: bool, verbose: bool,
        log_format: Literal["text", "json"]) -> None:
    """Run the terminal daemon until SIGTERM or SIGINT.

    Exits 0 after a signal, 1 when it cannot start or a fault stopped it (so that systemd's
    Restart=on-failure restarts it), 2 on a usage or config error.
    """
    from pos_loyalty.terminal.daemon import TerminalDaemon, tune_for_latency
    from pos_loyalty.terminal.demo_data import seed_demo_members
    from pos_loyalty.terminal.logsetup import configure_logging

    configure_logging(verbose=verbose, fmt=log_format)
    try:
        config = with_overrides(load_config(config_file), serial=serial, reader=reader, db=db,
                                simulation=simulation)
        if baud is not None:
            config = replace(config, baudrate=int(baud))
    except ConfigError as exc:
        click.echo(f"pos-loyalty: config error: {exc}", err=True)
        sys.exit(2)
    if not config.serial_port:
        click.echo("pos-loyalty: no serial port: give --serial or set serial.port in the "
                   "config file", err=True)
        sys.exit(2)
    try:
        check_card_keys(config)  # no key, no start: the demo keys only in a simulation
    except ConfigError as exc:
        click.echo(f"pos-loyalty: config error: {exc}", err=True)
        sys.exit(2)
    tune_for_latency()
    try:
        daemon = TerminalDaemon(config)
        if demo_members:
            seed_demo_members(daemon.store)
        daemon.start()
    except LoyaltyError as exc:
        click.echo(f"pos-loyalty: cannot start: {exc}", err=True)
        sys.exit(1)

    def _stop(signum: int, _frame: FrameType | None) -> None:
        logging.getLogger("pos_loyalty").info("signal %d: stopping", signum)
        daemon.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    click.echo(f"pos-loyalty terminal {daemon.terminal_id}: reader {config.reader_path}, "
               f"till {config.serial_port} at {config.baudrate} baud, "
               f"store {config.resolved_db_url}, program {daemon.programs.current.label}",
               err=True)
    worker = threading.Thread(target=daemon.run, name="terminal")
    worker.start()
    while worker.is_alive():
        worker.join(timeout=0.5)
    if daemon.fault is not None:
        click.echo(f"pos-loyalty: stopped on a fault: {daemon.fault}", err=True)
        sys.exit(1)
    click.echo("pos-loyalty: stopped", err=True)


@click.command()
def demo() -> None:
    """Run the whole loop on simulated hardware and print the till's transcript."""
    from pos_loyalty.demo import run_demo

    try:
        sys.exit(run_demo(click.echo))
    except LoyaltyError as exc:
        click.echo(f"pos-loyalty demo failed: {exc}", err=True)
        sys.exit(1)
