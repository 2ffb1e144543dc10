"""The ``pos-loyalty`` command line.

Every command lives beside the code it drives (``pos_loyalty/<area>/cli.py``) and is added
here. Domain errors become one clear line on stderr and exit code 2 (config) or 1 (other);
nobody at a till or in store IT should meet a traceback.
"""

from __future__ import annotations

import click

from pos_loyalty import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pos-loyalty")
def main() -> None:
    """pos-loyalty: NFC loyalty terminal for point-of-sale tills."""


@main.group()
def sim() -> None:
    """Simulated hardware: emulated NFC tags and a reference till."""


# -- terminal: demo, run ---------------------------------------------------------------
from pos_loyalty.terminal.cli import demo, run  # noqa: E402

main.add_command(demo)
main.add_command(run)

# -- POS serial link: sim pos, pos-check -----------------------------------------------
from pos_loyalty.pos.cli import pos_check, sim_pos, sim_pty  # noqa: E402

sim.add_command(sim_pos)
sim.add_command(sim_pty)
main.add_command(pos_check)

# -- rules engine: quote ---------------------------------------------------------------
from pos_loyalty.rules.cli import quote_command  # noqa: E402

main.add_command(quote_command)

# -- NFC: sim tag, doctor, card, tag ---------------------------------------------------
from pos_loyalty.nfc.cli import register as register_nfc  # noqa: E402
from pos_loyalty.nfc.sun_cli import tag as nfc_tag  # noqa: E402

main.add_command(nfc_tag)
register_nfc(main, sim)  # after any other "tag" group is added: "tag write" joins it

# -- central server and sync: server, db, admin, enroll, report ------------------------
from pos_loyalty.server.cli import admin, db, report, server, sim_chain  # noqa: E402
from pos_loyalty.sync.cli import enroll  # noqa: E402

main.add_command(server)
main.add_command(db)
main.add_command(admin)
main.add_command(enroll)
main.add_command(report)
sim.add_command(sim_chain)
