"""NFC commands: ``sim tag``, ``card issue``, ``card keygen``, ``tag write``, ``tag batch
create``, ``tag check``, ``doctor``.

Registered on the top-level group by :func:`register`. Errors are one line on stderr: exit 2
for usage and configuration mistakes (bad option, bad script or key file), 1 for everything
else (no card presented, card refused, reader missing).
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from types import FrameType
from typing import Any, NoReturn

import click

from pos_loyalty.errors import CardError, ConfigError, ReaderError
from pos_loyalty.nfc.cardformat import (
    DEFAULT_PRODUCT_BASE,
    CardTrust,
    Issuer,
    member_card_ndef,
    product_tag_ndef,
    valid_card_id,
    valid_product,
)
from pos_loyalty.nfc.demo_keys import DEMO_ISSUER
from pos_loyalty.nfc.sim.base import EmulatedTag
from pos_loyalty.nfc.sim.ntag import MODELS

NFCPY_UDP_PORT = 54321  # nfcpy's default for "udp" paths


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"pos-loyalty: {message}", err=True)
    sys.exit(code)


def _issuer(key_file: str | None) -> Issuer:
    if key_file is None:
        return DEMO_ISSUER
    from pos_loyalty.nfc.keys import load_issuer

    try:
        return load_issuer(key_file)
    except ConfigError as exc:
        _fail(str(exc), 2)


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _describe(tag: EmulatedTag) -> str:
    return f"{type(tag).__name__} uid {tag.uid.hex().upper()}"


# -- sim tag -----------------------------------------------------------------------------------

_INTERACTIVE_HELP = """commands (one per line):
  member CARD | copied CARD | phone CARD | sun-member CARD | product CODE | sun-product CODE
  foreign | blank | unformatted | legacy
      put that tag on the reader (it stays until the next command)
  remove      take the tag away
  quit        stop"""


@click.command("tag")
@click.option("--port", type=click.IntRange(0, 65535), default=NFCPY_UDP_PORT,
              show_default=True, help="UDP port on 127.0.0.1 (0 picks a free one).")
@click.option("--card", "card_id", help="Tap a demo-signed member card with this number.")
@click.option("--product", help="Tap a signed product tag with this product code.")
@click.option("--foreign", is_flag=True, help="Tap a tag carrying somebody else's web link.")
@click.option("--blank", is_flag=True, help="Tap a factory-blank NTAG213.")
@click.option("--unformatted", is_flag=True, help="Tap an NTAG213 with no NDEF area.")
@click.option("--legacy", is_flag=True, help="Tap a UID-only MIFARE Classic-like card.")
@click.option("--phone", is_flag=True, help="With --card: a phone emulating the card (Type 4).")
@click.option("--sun", is_flag=True,
              help="With --card or --product: an NTAG 424 DNA with live SUN (demo keys).")
@click.option("--script", "script_file", type=click.Path(dir_okay=False),
              help="Play a tap session file (TOML or JSON).")
@click.option("--hold-ms", type=click.IntRange(0, 3_600_000), default=1500, show_default=True,
              help="Time the tag stays on the reader (long enough for a reader that is "
                   "between polls or reconnecting); 0 = until stopped.")
@click.option("--gap-ms", type=click.IntRange(0, 3_600_000), default=500, show_default=True,
              help="Empty field between repeated taps.")
@click.option("--repeat", type=click.IntRange(1, 100_000), default=1, show_default=True)
@click.option("--model", type=click.Choice(sorted(MODELS)), default=None,
              help="NTAG model (default NTAG213; NTAG215 for product tags).")
@click.option("--uid", help="Fixed UID in hex (7 bytes NTAG, 4 or 7 bytes legacy).")
@click.option("--key", "key_file", type=click.Path(dir_okay=False),
              help="Issuer key file for signing (default: the simulation-only demo key).")
def sim_tag(port: int, card_id: str | None, product: str | None, foreign: bool, blank: bool,
            unformatted: bool, legacy: bool, phone: bool, sun: bool, script_file: str | None,
            hold_ms: int,
            gap_ms: int, repeat: int, model: str | None, uid: str | None,
            key_file: str | None) -> None:
    """Emulate NFC tags for a reader on udp:127.0.0.1:PORT (nfcpy's udp driver).

    With a tag option: tap it (--repeat times) and exit. With --script: play the session.
    With neither: read commands from stdin (type 'help').
    """
    from pos_loyalty.nfc.sim.emulator import TagEmulator
    from pos_loyalty.nfc.sim.script import TagFactory, Tap, TapScript, load_script, parse_tap

    chosen = [name for name, on in (("card", card_id is not None),
                                    ("product", product is not None), ("foreign", foreign),
                                    ("blank", blank), ("unformatted", unformatted),
                                    ("legacy", legacy), ("script", script_file is not None))
              if on]
    if len(chosen) > 1:
        _fail(f"choose one of --card/--product/--foreign/--blank/--unformatted/--legacy/"
              f"--script, not {' and '.join('--' + c for c in chosen)}", 2)
    script: TapScript | None = None
    try:
        if script_file is not None:
            script = load_script(script_file)
        elif chosen:
            kind = "member" if chosen[0] == "card" else chosen[0]
            if phone and sun:
                _fail("--phone and --sun do not go together", 2)
            if phone:
                if kind != "member":
                    _fail("--phone needs --card", 2)
                kind = "phone"
            if sun:
                if kind not in ("member", "product"):
                    _fail("--sun needs --card or --product", 2)
                kind = "sun-" + kind
            step: dict[str, Any] = {"tag": kind, "hold_ms": hold_ms, "gap_ms": gap_ms}
            if card_id is not None:
                step["card"] = card_id
            if product is not None:
                step["product"] = product
            if uid is not None:
                step["uid"] = uid
            if model is not None:
                step["model"] = model
            script = TapScript((parse_tap(step, "command line", "option"),), repeat)
    except ConfigError as exc:
        _fail(str(exc), 2)
    factory = TagFactory(_issuer(key_file))
    stop = threading.Event()
    _stop_on_signals(stop)
    try:
        emulator = TagEmulator("127.0.0.1", port)
    except OSError as exc:
        _fail(f"cannot bind 127.0.0.1:{port}: {exc.strerror or exc}")
    with emulator:
        click.echo(f"tag emulator on {emulator.path} (reader path for nfcpy)")
        sys.stdout.flush()
        if script is not None:
            hold_forever = script.taps[0].hold_ms == 0 and len(script.taps) == 1

            def announce(n: int, tap: Tap, tag: EmulatedTag) -> None:
                click.echo(f"tap {n + 1}: {tap.tag.kind} {_describe(tag)}")
                sys.stdout.flush()

            if hold_forever:
                tag = factory(script.taps[0].tag)
                emulator.present(tag)
                announce(0, script.taps[0], tag)
                stop.wait()
                emulator.remove()
                return
            from pos_loyalty.nfc.sim.script import play

            played = play(emulator, script, stop, factory=factory, on_tap=announce)
            click.echo(f"done: {played} taps")
            return
        _interactive(emulator, factory, stop)


def _interactive(emulator: Any, factory: Any, stop: threading.Event) -> None:
    from pos_loyalty.nfc.sim.script import parse_tap

    click.echo("type 'help' for commands")
    sys.stdout.flush()
    for line in sys.stdin:
        if stop.is_set():
            break
        words = line.split()
        if not words:
            continue
        cmd = words[0].lower()
        if cmd in ("quit", "exit"):
            break
        if cmd == "help":
            click.echo(_INTERACTIVE_HELP)
        elif cmd == "remove":
            emulator.remove()
            click.echo("removed")
        else:
            step: dict[str, Any] = {"tag": cmd}
            if cmd in ("member", "copied", "phone", "sun-member") and len(words) > 1:
                step["card"] = words[1]
            if cmd in ("product", "sun-product") and len(words) > 1:
                step["product"] = words[1]
            try:
                tap = parse_tap(step, "stdin", cmd)
            except ConfigError as exc:
                click.echo(f"error: {exc}")
            else:
                tag = factory(tap.tag)
                emulator.present(tag)
                click.echo(f"presented {cmd} {_describe(tag)}")
        sys.stdout.flush()
    emulator.remove()


# -- card issue / keygen, tag write ------------------------------------------------------------


def _provision(reader: str, build: Any, issuer: Issuer, lock: bool, timeout: float,
               what: str) -> None:
    from pos_loyalty.nfc.provision import provision

    trust = CardTrust((issuer.public_key,))
    click.echo(f"present the {what} to the reader {reader} ...", err=True)
    try:
        done = provision(reader, build, trust, lock=lock, timeout_s=timeout)
    except (CardError, ReaderError) as exc:
        _fail(str(exc))
    summary = {"uid": done.uid, "tag_type": done.tag_type, "ndef_bytes": done.ndef_bytes,
               "kind": done.event.kind, "card_id": done.event.card_id,
               "product": done.event.product, "verified": done.event.verified,
               "locked": done.locked, "issuer_key_id": issuer.key_id.hex()}
    click.echo(f"{what} written to {done.tag_type} {done.uid}"
               f"{', locked' if done.locked else ' (not locked)'}", err=True)
    click.echo(json.dumps(summary))


@click.group()
def card() -> None:
    """Member cards: issue (write, verify, lock) and issuer keys."""


@card.command("issue")
@click.option("--reader", required=True, help="nfcpy reader path: usb, tty:USB0:pn532, udp:...")
@click.option("--card-id", required=True, help="The card number (1-32 of A-Z a-z 0-9 - _).")
@click.option("--key", "key_file", type=click.Path(dir_okay=False),
              help="Issuer private key file (default: the simulation-only demo key).")
@click.option("--lock/--no-lock", default=True, show_default=True,
              help="Lock the card read-only after it verified.")
@click.option("--timeout", type=click.FloatRange(0.5, 600), default=10.0, show_default=True,
              help="Seconds to wait for a card.")
def card_issue(reader: str, card_id: str, key_file: str | None, lock: bool,
               timeout: float) -> None:
    """Write a signed member card onto the NTAG21x on the reader, check it, lock it."""
    if not valid_card_id(card_id):
        _fail(f"invalid --card-id {card_id!r}: 1-32 of A-Z a-z 0-9 - _", 2)
    issuer = _issuer(key_file)
    _provision(reader, lambda uid: member_card_ndef(card_id, uid, issuer), issuer, lock,
               timeout, f"member card {card_id}")


@card.command("keygen")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Where to write the new private key (PEM; never overwritten).")
def card_keygen(out: str) -> None:
    """Create an issuer key; prints the public key the terminals are configured with."""
    from pos_loyalty.nfc.keys import save_issuer

    issuer = Issuer.generate()
    try:
        save_issuer(issuer, out)
    except ConfigError as exc:
        _fail(str(exc), 2)
    click.echo(f"private key written to {out}; keep it off the terminals", err=True)
    click.echo(json.dumps({"public_key": issuer.public_key.hex(),
                           "key_id": issuer.key_id.hex()}))


@click.command("write")
@click.option("--reader", required=True, help="nfcpy reader path: usb, tty:USB0:pn532, udp:...")
@click.option("--product", required=True, help="Product code (SKU or GTIN).")
@click.option("--base-url", default=DEFAULT_PRODUCT_BASE, show_default=True,
              help="https base of the URI a phone opens.")
@click.option("--key", "key_file", type=click.Path(dir_okay=False),
              help="Issuer private key file (default: the simulation-only demo key).")
@click.option("--lock/--no-lock", default=True, show_default=True)
@click.option("--timeout", type=click.FloatRange(0.5, 600), default=10.0, show_default=True)
def tag_write(reader: str, product: str, base_url: str, key_file: str | None, lock: bool,
              timeout: float) -> None:
    """Write a signed product URI onto the NTAG21x on the reader (NTAG215/216 for room)."""
    if not valid_product(product):
        _fail(f"invalid --product {product!r}: 1-32 of A-Z a-z 0-9 . - _", 2)
    if not base_url.startswith("https://"):
        _fail("--base-url must start with https://", 2)
    issuer = _issuer(key_file)
    _provision(reader, lambda uid: product_tag_ndef(product, uid, issuer, base_url), issuer,
               lock, timeout, f"product tag {product}")


# -- registration ------------------------------------------------------------------------------


def register(main: click.Group, sim: click.Group) -> None:
    """Add the NFC commands; ``tag write`` joins an existing ``tag`` group if there is one."""
    from pos_loyalty.nfc.doctor import doctor

    sim.add_command(sim_tag)
    main.add_command(card)
    main.add_command(doctor)
    tag_group = main.commands.get("tag")
    if not isinstance(tag_group, click.Group):
        tag_group = click.Group("tag", help="Product tags: write and check them.")
        main.add_command(tag_group)
    tag_group.add_command(tag_write)
    tag_group.add_command(tag_batch)
    tag_group.add_command(tag_check)



# -- tag batch create, tag check ---------------------------------------------------------------


def _config_sun_keys(config_file: str) -> Any:
    from pos_loyalty.config import load_config

    try:
        keys = load_config(config_file).sun_keys
    except ConfigError as exc:
        _fail(str(exc), 2)
    if keys is None or keys.product_url is None:
        _fail(f"{config_file}: key 'sun.product_url': the [sun] section with product_url is "
              "needed", 2)
    return keys


@click.group("batch")
def tag_batch() -> None:
    """Many NTAG 424 DNA product tags at once: keys and a personalisation file."""


@tag_batch.command("create")
@click.option("--sku", required=True, help="Product code the tags lead to.")
@click.option("--count", type=click.IntRange(1, 1_000_000), required=True)
@click.option("--uids", "uid_file", type=click.File("r"), default=None,
              help="The tags' UIDs from the supplier's delivery note, one per line (14 hex).")
@click.option("--simulation", is_flag=True,
              help="Make random NXP UIDs instead (emulated tags only).")
@click.option("--config", "config_file", required=True, type=click.Path(dir_okay=False),
              help="A config file with the chain's [sun] keys and product_url.")
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False),
              help="The personalisation CSV to write (new file, mode 0600: it holds keys).")
def tag_batch_create(sku: str, count: int, uid_file: Any, simulation: bool,
                     config_file: str, out_file: str) -> None:
    """Per-tag diversified keys and the SDM layout of COUNT tags, as CSV for the encoder."""
    import csv
    import os
    import secrets

    from pos_loyalty.nfc.producturl import PERSONALISATION_FIELDS, personalisation

    if not valid_product(sku):
        _fail(f"invalid --sku {sku!r}: 1-32 of A-Z a-z 0-9 . - _", 2)
    if (uid_file is None) == (not simulation):
        _fail("give --uids FILE (real tags) or --simulation (random UIDs), one of them", 2)
    keys = _config_sun_keys(config_file)
    if uid_file is not None:
        uids: list[bytes] = []
        for n, line in enumerate(uid_file, 1):
            text = line.strip().replace(":", "")
            if not text:
                continue
            try:
                uid = bytes.fromhex(text)
            except ValueError:
                uid = b""
            if len(uid) != 7:
                _fail(f"{uid_file.name}:{n}: not a 7-byte UID (14 hex digits): {text[:40]!r}", 2)
            uids.append(uid)
        if len(set(uids)) != len(uids):
            _fail(f"{uid_file.name}: a UID appears twice", 2)
        if len(uids) < count:
            _fail(f"{uid_file.name} has {len(uids)} UIDs, fewer than --count {count}", 2)
    else:
        uids = [b"\x04" + secrets.token_bytes(6) for _ in range(count)]
    try:
        fd = os.open(out_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        _fail(f"{out_file} exists: not overwriting a file of keys", 2)
    with os.fdopen(fd, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=PERSONALISATION_FIELDS)
        writer.writeheader()
        for uid in uids[:count]:
            writer.writerow(personalisation(sku, uid, keys))
    click.echo(f"{count} tags of {sku} in {out_file} (SDM meta read key: the [sun] meta_key; "
               "file read key per tag in the file)", err=True)


@click.command("check")
@click.argument("url", required=False)
@click.option("--reader", default=None, help="Read the tag on this nfcpy reader instead.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="A config file with [sun] keys and [cards] issuer_keys to check with.")
@click.option("--timeout", type=click.FloatRange(0.5, 600), default=10.0, show_default=True)
def tag_check(url: str | None, reader: str | None, config_file: str | None,
              timeout: float) -> None:
    """Say what a product tag's URL (or the tag on a reader) is and whether it verifies.

    The last output line is JSON. Exit 0 when it verifies, 1 when it does not. A SUN
    counter is checked only by central: a valid MAC here does not say the URL is unused.
    """
    from pos_loyalty.config import load_config
    from pos_loyalty.nfc.producturl import TagKeys, parse_product_url, prove

    if (url is None) == (reader is None):
        _fail("give a URL or --reader, one of them", 2)
    sun = None
    issuer_keys: tuple[str, ...] = ()
    if config_file is not None:
        try:
            cfg = load_config(config_file)
        except ConfigError as exc:
            _fail(str(exc), 2)
        sun, issuer_keys = cfg.sun_keys, cfg.issuer_keys
    keys = TagKeys.build(sun, issuer_keys)
    tag_uid = None
    if reader is not None:
        url, tag_uid = _read_url(reader, timeout)
    assert url is not None
    parsed = parse_product_url(url)
    if parsed is None:
        out = {"kind": "other", "verified": False,
               "reason": "not a product tag URL (https://.../p/<product>?...)"}
    else:
        sku, query = parsed
        proof = prove(sku, query, keys)
        verified = proof.proof in ("sun", "signed")
        reason = proof.reason
        if verified and tag_uid is not None and proof.uid != tag_uid:
            verified, reason = False, f"copied: the URL belongs to tag {proof.uid}"
        out = {"kind": {"sun": "ntag424-sun", "signed": "ntag21x-signed"}.get(
                   proof.proof, "unverified"),
               "product": sku, "uid": proof.uid, "counter": proof.counter,
               "verified": verified, "reason": reason}
    click.echo(f"{out['kind']}: {'verifies' if out['verified'] else 'does NOT verify'}"
               f"{' - ' + str(out['reason']) if out['reason'] else ''}")
    click.echo(json.dumps(out))
    if not out["verified"]:
        raise click.exceptions.Exit(1)


def _read_url(reader: str, timeout: float) -> tuple[str, str]:
    """The first URI on the tag presented to ``reader``, and the tag's UID (hex)."""
    import ndef as ndeflib

    from pos_loyalty.nfc.nfcpy_source import open_frontend
    from pos_loyalty.nfc.provision import wait_for_tag

    click.echo(f"present the tag to the reader {reader} ...", err=True)
    try:
        clf = open_frontend(reader)
    except ReaderError as exc:
        _fail(str(exc))
    try:
        tag = wait_for_tag(clf, reader, timeout)
        uid = bytes(tag.identifier).hex().upper()
        records = list(tag.ndef.records) if tag.ndef is not None else []
    except (CardError, ReaderError) as exc:
        _fail(str(exc))
    finally:
        clf.close()
    for record in records:
        if isinstance(record, ndeflib.UriRecord):
            return str(record.iri), uid
    _fail(f"tag {uid} carries no web link")
