"""``pos-loyalty tag verify-sun``: check one NTAG 424 DNA SUN message by hand (store IT);
``pos-loyalty tag sun-key``: the per-tag file read key to provision on a tag.

Prints a few readable lines, then ONE JSON object on the last line (scripts read that line).
An invalid message, bad hex or a wrong length all print ``{"valid": false, "reason": ...}``
and exit 1; nothing here ends in a traceback.
"""

from __future__ import annotations

import json

import click

from pos_loyalty.nfc import sun
from pos_loyalty.nfc.diversify import tag_key


def _hex(name: str, text: str) -> bytes:
    cleaned = text.strip().replace(" ", "").replace(":", "")
    try:
        return bytes.fromhex(cleaned)
    except ValueError as exc:
        raise ValueError(f"{name} is not hex: {text!r}") from exc


def _fail(reason: str) -> None:
    click.echo(f"SUN message INVALID: {reason}")
    click.echo(json.dumps({"valid": False, "reason": reason}))
    raise click.exceptions.Exit(1)


@click.command("verify-sun")
@click.option("--meta-key", required=True, help="SDM meta read key (PICC data), 32 hex digits.")
@click.option("--file-key", required=True, help="SDM file read key (MAC, ENC), 32 hex digits.")
@click.option("--picc", default=None, help="Encrypted PICC data from the URL, 32 hex digits.")
@click.option("--cmac", default=None, help="SUN MAC from the URL, 16 hex digits.")
@click.option("--enc", default=None, help="Encrypted file data from the URL (hex), if mirrored.")
@click.option("--mac-input", default="",
              help="The text the tag's MAC covers, as ASCII (empty when omitted).")
@click.option("--url", default=None,
              help="Instead of --picc/--enc/--cmac/--mac-input: the whole URL read from the "
                   "tag (picc_data, enc, cmac parameters; the MAC covers '<enc>&cmac=').")
@click.option("--last-counter", type=click.IntRange(0, sun.COUNTER_MAX), default=None,
              help="Refuse counters at or below this one (a replayed URL).")
def verify_sun(meta_key: str, file_key: str, picc: str | None, cmac: str | None,
               enc: str | None, mac_input: str, url: str | None,
               last_counter: int | None) -> None:
    """Decrypt and check one SUN message; the last output line is JSON."""
    if url is not None:
        if picc is not None or cmac is not None or enc is not None or mac_input:
            raise click.UsageError("give either --url or --picc/--cmac/--enc/--mac-input")
        parts = sun.split_sun_url(url)
        if isinstance(parts, str):
            _fail(parts)
            return
        picc, enc, cmac, mac_input = parts
    elif picc is None or cmac is None:
        raise click.UsageError("--picc and --cmac are required (or give --url)")
    try:
        meta = _hex("--meta-key", meta_key)
        file_ = _hex("--file-key", file_key)
        picc_b = _hex("--picc", picc)
        cmac_b = _hex("--cmac", cmac)
        enc_b = _hex("--enc", enc) if enc is not None else None
        covered = mac_input.encode("ascii")
    except UnicodeEncodeError:
        _fail("--mac-input must be ASCII text")
        return
    except ValueError as exc:
        _fail(str(exc))
        return
    result = sun.verify_sun(meta, file_, picc_b, cmac_b, enc=enc_b, mac_input=covered,
                            last_counter=last_counter)
    out = result.as_dict()
    if result.uid is not None:
        click.echo(f"UID:       {out['uid']}")
        click.echo(f"Counter:   {result.counter}")
    if result.file_data is not None:
        click.echo(f"File data: {out['file_data']} ({out.get('file_data_text')!r})")
    click.echo(f"CMAC:      {'holds' if result.cmac_valid else 'does NOT hold'}")
    click.echo("SUN message valid" if result.valid else f"SUN message INVALID: {result.reason}")
    click.echo(json.dumps(out))
    if not result.valid:
        raise click.exceptions.Exit(1)


@click.command("sun-key")
@click.option("--file-master-key", required=True,
              help="The chain's SUN file master key ([sun] file_master_key), 32 hex digits.")
@click.option("--uid", required=True, help="The tag's 7-byte UID, 14 hex digits.")
@click.option("--system-id", default="pos-loyalty", show_default=True,
              help="The [sun] system_id of the terminals' config.")
def sun_key(file_master_key: str, uid: str, system_id: str) -> None:
    """Print the SDM file read key to provision on one NTAG 424 DNA (AN10922, per tag).

    Terminals configured with the same master key and system id derive the same key from
    the UID the tag mirrors, so no per-tag key list is kept anywhere.
    """
    try:
        master = _hex("--file-master-key", file_master_key)
        uid_b = _hex("--uid", uid)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    if len(master) != 16:
        raise click.BadParameter("must be 32 hex digits", param_hint="--file-master-key")
    if len(uid_b) != sun.UID_LEN:
        raise click.BadParameter("an NTAG 424 DNA UID is 14 hex digits", param_hint="--uid")
    if not system_id.isascii() or not 1 <= len(system_id) <= 24:
        raise click.BadParameter("1-24 ASCII characters", param_hint="--system-id")
    click.echo(tag_key(master, uid_b, system_id.encode("ascii")).hex().upper())


@click.group()
def tag() -> None:
    """Product tags: write and check them."""


tag.add_command(verify_sun)
tag.add_command(sun_key)
