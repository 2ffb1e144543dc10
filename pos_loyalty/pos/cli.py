"""``pos-loyalty sim pos`` (reference till) and ``pos-loyalty pos-check`` (conformance)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

import click

from pos_loyalty.errors import SerialLinkError
from pos_loyalty.pos.check import ConformanceChecker
from pos_loyalty.pos.console import ConsoleError, ExpectationFailed, TillConsole
from pos_loyalty.pos.till import SimulatedTill


def _run_lines(console: TillConsole, lines: TextIO, name: str, *, prompt: bool) -> None:
    lineno = 0
    while True:
        if prompt:
            click.echo("till> ", nl=False)
        line = lines.readline()
        if not line:
            return
        lineno += 1
        try:
            if not console.execute(line):
                return
        except ConsoleError as exc:
            if prompt:
                click.echo(f"error: {exc}", err=True)
                continue
            raise click.UsageError(f"{name}:{lineno}: {exc}") from exc
        except (ExpectationFailed, SerialLinkError) as exc:
            if prompt:
                click.echo(f"error: {exc}", err=True)
                continue
            raise click.ClickException(f"{name}:{lineno}: {exc}") from exc


@click.command("pos")
@click.argument("port")
@click.option("--baud", default=115200, show_default=True, help="Line speed.")
@click.option("--pos-id", default="POS-1", show_default=True, help="This till's pos_id.")
@click.option("--script", "script", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Run the commands in FILE instead of reading them interactively.")
@click.option("--json", "raw_json", is_flag=True, help="Print terminal messages as raw JSON.")
@click.option("--link-timeout", default=10.0, show_default=True,
              help="Seconds to wait for the terminal's hello.")
@click.option("--txn-prefix", default=None,
              help="Sale numbers are PREFIX0001, PREFIX0002...; default: T + the start time "
                   "+ '-', so that a restarted till never reuses a committed number.")
def sim_pos(port: str, baud: int, pos_id: str, script: Path | None, raw_json: bool,
            link_timeout: float, txn_prefix: str | None) -> None:
    """A reference till on serial PORT: type baskets, commits, voids (or script them).

    Type 'help' at the prompt for the commands. With --script FILE (or commands piped on
    stdin) a failing 'expect' or an unanswered request exits 1.
    """
    till = SimulatedTill(port, pos_id=pos_id, baudrate=baud)
    try:
        till.start()
    except SerialLinkError as exc:
        raise click.ClickException(str(exc)) from exc
    prefix = txn_prefix if txn_prefix is not None else time.strftime("T%y%m%d%H%M%S-")
    console = TillConsole(till, click.echo, raw_json=raw_json, txn_prefix=prefix)
    try:
        try:
            till.wait_link_up(link_timeout)
        except SerialLinkError as exc:
            raise click.ClickException(f"{port}: {exc}") from exc
        peer = till.endpoint.peer
        click.echo(f"-- linked to terminal {peer.id if peer else '?'!r} on {port} "
                   f"({baud} baud); sale {console.txn_id}")
        console.start()
        if script is not None:
            with script.open(encoding="utf-8") as fh:
                _run_lines(console, fh, str(script), prompt=False)
        else:
            interactive = sys.stdin.isatty()
            _run_lines(console, sys.stdin, "<stdin>", prompt=interactive)
    finally:
        console.stop()
        till.close()


@click.command("pos-check")
@click.argument("port")
@click.option("--baud", default=115200, show_default=True, help="Line speed.")
@click.option("--hello-wait", default=15.0, show_default=True,
              help="Seconds to wait for the till's own hello.")
@click.option("--sale-wait", default=60.0, show_default=True,
              help="Seconds to wait for the operator to ring up a sale.")
def pos_check(port: str, baud: int, hello_wait: float, sale_wait: float) -> None:
    """Check a till implementation on serial PORT against the protocol rules.

    Plays the terminal, sends good and deliberately bad frames, and prints PASS, FAIL or
    SKIP per rule of docs/pos-protocol.md. Exits 1 if any rule fails.
    """
    checker = ConformanceChecker(port, baudrate=baud, hello_wait=hello_wait,
                                 sale_wait=sale_wait, say=click.echo)
    try:
        results = checker.run()
    except SerialLinkError as exc:
        raise click.ClickException(str(exc)) from exc
    failed = [r for r in results if r.status == "FAIL"]
    passed = sum(r.status == "PASS" for r in results)
    skipped = sum(r.status == "SKIP" for r in results)
    click.echo(f"{passed} passed, {len(failed)} failed, {skipped} skipped")
    if failed:
        raise click.ClickException(f"{len(failed)} protocol rule(s) broken")


@click.command("pty")
@click.option("--baud", type=click.IntRange(1200, 4_000_000), default=None,
              help="Pace the relay to this line rate (default: as fast as the ptys go).")
def sim_pty(baud: int | None) -> None:
    """A serial cable in software: two linked pseudo-terminals until Ctrl-C.

    Prints the terminal side and the till side paths, for `pos-loyalty run --serial` and
    `pos-loyalty sim pos` (or a POS vendor's own till software).
    """
    import signal
    import threading

    from pos_loyalty.pos.pty import PtyBridge

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with PtyBridge(baudrate=baud) as bridge:
        click.echo(f"terminal side: {bridge.terminal_path}")
        click.echo(f"till side:     {bridge.till_path}", nl=True)
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
