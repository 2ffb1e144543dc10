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

# -- POS serial link: sim pos, pos-check -----------------------------------------------

# -- rules engine: quote ---------------------------------------------------------------

# -- NFC: sim tag, doctor, card, tag ---------------------------------------------------
from pos_loyalty.nfc.sun_cli import tag as nfc_tag  # noqa: E402

main.add_command(nfc_tag)

# -- central server and sync: server, db, admin, enroll, report ------------------------
