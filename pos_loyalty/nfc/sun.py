"""NTAG 424 DNA Secure Unique NFC (SUN) messages: verify and generate, AES mode.

The algorithm is NXP AN12196 ("NTAG 424 DNA features and hints", section 3):

* ``PICCData`` = AES-128-CBC(meta read key, IV 0) of ``tag byte || UID || SDMReadCtr || pad``;
  the tag byte says what is mirrored (0x80 UID, 0x40 counter, low nibble the UID length) and
  the counter is 3 bytes little endian. The tag fills the pad with random bytes.
* Session keys are CMACs under the file read key of a session vector
  ``SV = C33C|3CC3 0001 0080 || UID || SDMReadCtr`` zero-padded to 16 bytes
  (``C33C`` gives the ENC key, ``3CC3`` the MAC key).
* ``SDMMAC`` = the odd-indexed bytes (1, 3, ..., 15) of CMAC(session MAC key, the ASCII text the
  MAC covers: from ``SDMMACInputOffset`` up to the MAC itself; empty when both offsets match).
* ``SDMENCFileData`` = AES-128-CBC(session ENC key, IV = AES-ECB(session ENC key,
  SDMReadCtr || 13 zero bytes)) of the mirrored file data, a multiple of 16 bytes.

Tags switched to LRP mode (AN12304; 24-byte PICC data = 8 random bytes || LRICB ciphertext)
are verified too: one session master key = CMAC_LRP(file read key, ``0001 0080 || UID ||
SDMReadCtr`` zero-padded || ``1EE1``), the MAC with its updated key 0, the file data LRICB-
decrypted with its updated key 1 from counter ``SDMReadCtr || 000000`` (see ``lrp.py``).

Everything here is pure: bytes in, values out. No clock, no I/O, no randomness (the generator
takes its pad bytes as an argument). Verification never raises on outside data: it returns a
:class:`SunResult` whose ``reason`` a cashier or store IT can read. Counter replay is refused
against the last counter the caller has seen for that UID; keeping those counters is the
caller's business (:class:`CounterStore`).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from pos_loyalty.nfc.lrp import Lrp

KEY_LEN = 16
PICC_LEN = 16
PICC_LEN_LRP = 24
LRP_RAND_LEN = 8
MAC_LEN = 8
UID_LEN = 7
COUNTER_MAX = 0xFFFFFF
BLOCK = 16

TAG_UID_MIRROR = 0x80
TAG_COUNTER_MIRROR = 0x40
#: The tag byte an NTAG 424 DNA writes when it mirrors its 7-byte UID and its read counter.
TAG_UID_AND_COUNTER = TAG_UID_MIRROR | TAG_COUNTER_MIRROR | UID_LEN

_SV_ENC = bytes.fromhex("C33C00010080")
_SV_MAC = bytes.fromhex("3CC300010080")
_ZERO_IV = bytes(BLOCK)


class SunFormatError(ValueError):
    """A SUN field has the wrong length or shape (raised only by the generator helpers)."""


@dataclass(frozen=True)
class PiccData:
    """What ``PICCData`` decrypts to: the tag byte, the UID and the read counter."""

    tag: int
    uid: bytes
    counter: int | None
    lrp: bool = False


@dataclass(frozen=True)
class SunResult:
    """Outcome of verifying one SUN message; ``reason`` is set whenever ``valid`` is false.

    ``uid``/``counter`` are filled in as soon as the PICC data decrypted to a known layout,
    even if the MAC then fails, so store IT can see which tag it was. ``cmac_valid`` says
    whether the MAC held (False when it was never checked).
    """

    valid: bool
    reason: str | None = None
    uid: bytes | None = None
    counter: int | None = None
    file_data: bytes | None = None
    cmac_valid: bool = False

    def as_dict(self) -> dict[str, object]:
        """JSON-ready view: bytes as upper-case hex, plus the file data as text if printable."""
        out: dict[str, object] = {"valid": self.valid}
        if self.reason is not None:
            out["reason"] = self.reason
        out["uid"] = self.uid.hex().upper() if self.uid is not None else None
        out["counter"] = self.counter
        out["cmac_valid"] = self.cmac_valid
        if self.file_data is not None:
            out["file_data"] = self.file_data.hex().upper()
            text = self.file_data.decode("ascii", errors="replace")
            out["file_data_text"] = text if text.isprintable() else None
        return out


class CounterStore(Protocol):
    """Where the caller keeps the last accepted read counter per UID (persistence elsewhere)."""

    def last_counter(self, uid: bytes) -> int | None: ...

    def record(self, uid: bytes, counter: int) -> None: ...


class MemoryCounterStore:
    """A dict-backed :class:`CounterStore`, for tests, the demo and short-lived tools."""

    def __init__(self, initial: Mapping[bytes, int] | None = None) -> None:
        self._last: dict[bytes, int] = dict(initial or {})

    def last_counter(self, uid: bytes) -> int | None:
        return self._last.get(bytes(uid))

    def record(self, uid: bytes, counter: int) -> None:
        key = bytes(uid)
        previous = self._last.get(key)
        if previous is None or counter > previous:
            self._last[key] = counter


# -- primitives ------------------------------------------------------------------------------


def _cmac(key: bytes, data: bytes) -> bytes:
    c = CMAC(algorithms.AES(key))
    c.update(data)
    return c.finalize()


def _cbc_decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    d = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return d.update(data) + d.finalize()


def _cbc_encrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    e = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return e.update(data) + e.finalize()


def _ecb_encrypt(key: bytes, block: bytes) -> bytes:
    e = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return e.update(block) + e.finalize()


def _counter_bytes(counter: int | None) -> bytes:
    if counter is None:
        return b""
    if not 0 <= counter <= COUNTER_MAX:
        raise SunFormatError(f"read counter must be 0..{COUNTER_MAX}, got {counter}")
    return counter.to_bytes(3, "little")


def _check_key(name: str, key: bytes) -> None:
    if len(key) != KEY_LEN:
        raise SunFormatError(f"{name} must be {KEY_LEN} bytes, got {len(key)}")


def _session_vector(prefix: bytes, uid: bytes, counter: int | None) -> bytes:
    sv = prefix + bytes(uid) + _counter_bytes(counter)
    return sv + bytes(-len(sv) % BLOCK)


def session_mac_key(file_read_key: bytes, uid: bytes, counter: int | None) -> bytes:
    """``KSesSDMFileReadMAC`` = CMAC(file read key, SV2 = 3CC3 0001 0080 || UID || ctr, padded)."""
    _check_key("file read key", file_read_key)
    return _cmac(file_read_key, _session_vector(_SV_MAC, uid, counter))


def session_enc_key(file_read_key: bytes, uid: bytes, counter: int | None) -> bytes:
    """``KSesSDMFileReadENC`` = CMAC(file read key, SV1 = C33C 0001 0080 || UID || ctr, padded)."""
    _check_key("file read key", file_read_key)
    return _cmac(file_read_key, _session_vector(_SV_ENC, uid, counter))


def session_master_key_lrp(file_read_key: bytes, uid: bytes, counter: int | None) -> bytes:
    """LRP mode: ``KSesSDMFileReadMaster`` = CMAC_LRP(file read key, 0001 0080 || UID || ctr
    zero-padded || 1EE1) (AN12196/NT4H2421 LRP secure messaging)."""
    _check_key("file read key", file_read_key)
    sv = b"\x00\x01\x00\x80" + bytes(uid) + _counter_bytes(counter)
    sv += bytes(-(len(sv) + 2) % BLOCK) + b"\x1e\xe1"
    return Lrp(file_read_key, 0).cmac(sv)


def truncate_mac(full: bytes) -> bytes:
    """MACt: the odd-indexed bytes (1, 3, ..., 15) of a 16-byte CMAC."""
    return bytes(full[1::2])


def sdm_mac(file_read_key: bytes, uid: bytes, counter: int | None, mac_input: bytes = b"",
            *, lrp: bool = False) -> bytes:
    """The 8-byte SDMMAC a tag writes over ``mac_input`` (the ASCII text the MAC covers)."""
    if lrp:
        master = session_master_key_lrp(file_read_key, uid, counter)
        return truncate_mac(Lrp(master, 0).cmac(mac_input))
    return truncate_mac(_cmac(session_mac_key(file_read_key, uid, counter), mac_input))


def _file_iv(enc_key: bytes, counter: int) -> bytes:
    return _ecb_encrypt(enc_key, _counter_bytes(counter) + bytes(BLOCK - 3))


def _lrp_file_cipher(file_read_key: bytes, uid: bytes, counter: int) -> tuple[Lrp, bytes]:
    master = session_master_key_lrp(file_read_key, uid, counter)
    return Lrp(master, 1), _counter_bytes(counter) + bytes(3)


def decrypt_file_data(file_read_key: bytes, uid: bytes, counter: int, enc: bytes, *,
                      lrp: bool = False) -> bytes:
    """Decrypt ``SDMENCFileData`` (a multiple of 16 bytes) with the session ENC key."""
    if not enc or len(enc) % BLOCK:
        raise SunFormatError(f"encrypted file data must be a non-empty multiple of 16 bytes, "
                             f"got {len(enc)}")
    if lrp:
        cipher, start = _lrp_file_cipher(file_read_key, uid, counter)
        return cipher.decrypt(enc, start)
    key = session_enc_key(file_read_key, uid, counter)
    return _cbc_decrypt(key, _file_iv(key, counter), enc)


def encrypt_file_data(file_read_key: bytes, uid: bytes, counter: int, data: bytes, *,
                      lrp: bool = False) -> bytes:
    """Encrypt mirrored file data as the tag does (inverse of :func:`decrypt_file_data`)."""
    if not data or len(data) % BLOCK:
        raise SunFormatError(f"file data must be a non-empty multiple of 16 bytes, "
                             f"got {len(data)}")
    if lrp:
        cipher, start = _lrp_file_cipher(file_read_key, uid, counter)
        return cipher.encrypt(data, start)
    key = session_enc_key(file_read_key, uid, counter)
    return _cbc_encrypt(key, _file_iv(key, counter), data)


def decrypt_picc_data(meta_read_key: bytes, picc: bytes) -> PiccData:
    """Decrypt ``PICCData`` and parse it; :class:`SunFormatError` if it is not a layout we know.

    Only the 7-byte UID layout exists on NTAG 424 DNA; any other tag byte means a wrong
    meta read key or a forged message.
    """
    _check_key("meta read key", meta_read_key)
    lrp = len(picc) == PICC_LEN_LRP
    if lrp:
        rand, body = picc[:LRP_RAND_LEN], picc[LRP_RAND_LEN:]
        plain = Lrp(meta_read_key, 0).decrypt(body, rand)
    elif len(picc) == PICC_LEN:
        plain = _cbc_decrypt(meta_read_key, _ZERO_IV, picc)
    else:
        raise SunFormatError(f"PICC data must be {PICC_LEN} bytes (AES mode) or "
                             f"{PICC_LEN_LRP} (LRP mode), got {len(picc)}")
    tag = plain[0]
    if not tag & TAG_UID_MIRROR or tag & 0x0F != UID_LEN or tag & 0x30:
        raise SunFormatError(
            f"PICC data does not decrypt to a known layout (tag byte {tag:02X}): "
            "wrong meta read key or not a genuine tag")
    uid = plain[1:1 + UID_LEN]
    counter = (int.from_bytes(plain[1 + UID_LEN:4 + UID_LEN], "little")
               if tag & TAG_COUNTER_MIRROR else None)
    return PiccData(tag=tag, uid=uid, counter=counter, lrp=lrp)


def encrypt_picc_data(meta_read_key: bytes, uid: bytes, counter: int,
                      pad: bytes = bytes(5), *, lrp_rand: bytes | None = None) -> bytes:
    """Build ``PICCData`` as the tag does; ``pad`` is the 5 random bytes a real tag appends.

    With ``lrp_rand`` (8 random bytes) the message is LRP mode: ``rand || LRICB(...)``.
    """
    _check_key("meta read key", meta_read_key)
    if len(uid) != UID_LEN:
        raise SunFormatError(f"UID must be {UID_LEN} bytes, got {len(uid)}")
    if len(pad) != 5:
        raise SunFormatError(f"pad must be 5 bytes, got {len(pad)}")
    plain = bytes([TAG_UID_AND_COUNTER]) + bytes(uid) + _counter_bytes(counter) + bytes(pad)
    if lrp_rand is not None:
        if len(lrp_rand) != LRP_RAND_LEN:
            raise SunFormatError(f"LRP random must be {LRP_RAND_LEN} bytes")
        return bytes(lrp_rand) + Lrp(meta_read_key, 0).encrypt(plain, bytes(lrp_rand))
    return _cbc_encrypt(meta_read_key, _ZERO_IV, plain)


# -- replay ----------------------------------------------------------------------------------


def replay_reason(counter: int | None, last_counter: int | None) -> str | None:
    """Why a counter must be refused given the last accepted one, or None if it is fresh."""
    if counter is None:
        return "tag does not mirror its read counter: replay cannot be ruled out"
    if last_counter is not None and counter <= last_counter:
        word = "repeated" if counter == last_counter else "older"
        return (f"replayed tag: read counter {counter} is {word} than the last seen "
                f"({last_counter})")
    return None


# -- verification ----------------------------------------------------------------------------


def verify_sun(meta_read_key: bytes, file_read_key: bytes, picc: bytes, cmac: bytes, *,
               enc: bytes | None = None, mac_input: bytes = b"",
               last_counter: int | None = None) -> SunResult:
    """Verify one SUN message; never raises on malformed input, returns a reasoned result.

    ``mac_input`` is what the MAC covers (for our URLs: ``<enc hex>&cmac=`` when ``enc`` is
    mirrored, empty otherwise). ``last_counter`` is the last counter accepted for this tag's
    UID, if the caller knows one: an equal or lower counter is refused as a replay.
    """
    for name, key in (("meta read key", meta_read_key), ("file read key", file_read_key)):
        if len(key) != KEY_LEN:
            return SunResult(False, f"{name} must be {KEY_LEN} bytes, got {len(key)}")
    if len(cmac) != MAC_LEN:
        return SunResult(False, f"SUN MAC must be {MAC_LEN} bytes, got {len(cmac)}")
    if enc is not None and (not enc or len(enc) % BLOCK):
        return SunResult(False, "encrypted file data must be a non-empty multiple of 16 bytes, "
                                f"got {len(enc)}")
    try:
        picc_data = decrypt_picc_data(meta_read_key, picc)
    except SunFormatError as exc:
        return SunResult(False, str(exc))
    uid, counter, lrp = picc_data.uid, picc_data.counter, picc_data.lrp
    expected = sdm_mac(file_read_key, uid, counter, mac_input, lrp=lrp)
    if not hmac.compare_digest(expected, bytes(cmac)):
        return SunResult(False, "SUN MAC does not verify: tampered tag data or wrong file key",
                         uid=uid, counter=counter)
    file_data = None
    if enc is not None:
        if counter is None:
            return SunResult(False, "encrypted file data needs the read counter, "
                                    "which this tag does not mirror",
                             uid=uid, counter=counter, cmac_valid=True)
        file_data = decrypt_file_data(file_read_key, uid, counter, enc, lrp=lrp)
    refused = replay_reason(counter, last_counter)
    return SunResult(refused is None, refused, uid=uid, counter=counter, file_data=file_data,
                     cmac_valid=True)


# -- generation (the tag's side, for emulators and provisioning checks) -------------------


@dataclass(frozen=True)
class SunMessage:
    """The dynamic values a tag mirrors into its NDEF on one read."""

    picc: bytes
    cmac: bytes
    enc: bytes | None = None

    def url(self, base: str, *, picc_param: str = "picc_data", enc_param: str = "enc",
            cmac_param: str = "cmac") -> str:
        """The SUN URL: ``base?picc_data=..[&enc=..]&cmac=..`` with upper-case hex."""
        sep = "&" if "?" in base else "?"
        parts = [f"{picc_param}={self.picc.hex().upper()}"]
        if self.enc is not None:
            parts.append(f"{enc_param}={self.enc.hex().upper()}")
        parts.append(f"{cmac_param}={self.cmac.hex().upper()}")
        return base + sep + "&".join(parts)


def url_mac_input(enc: bytes | None, *, cmac_param: str = "cmac") -> bytes:
    """What our SUN URL's MAC covers: ``<ENC hex>&cmac=`` with file data, else nothing.

    This is the layout AN12196's second example uses (SDMMACInputOffset at the ENC data).
    """
    if enc is None:
        return b""
    return (enc.hex().upper() + f"&{cmac_param}=").encode("ascii")


def generate_sun(meta_read_key: bytes, file_read_key: bytes, uid: bytes, counter: int, *,
                 file_data: bytes | None = None, pad: bytes = bytes(5),
                 mac_input: bytes | None = None, lrp_rand: bytes | None = None) -> SunMessage:
    """Compute what a tag with these keys mirrors for one read (inverse of :func:`verify_sun`).

    ``mac_input`` defaults to :func:`url_mac_input` of the ENC data, matching
    :meth:`SunMessage.url`; pass it explicitly for another layout. ``lrp_rand`` (8 random
    bytes) makes an LRP-mode message instead of an AES-mode one.
    """
    _check_key("file read key", file_read_key)
    lrp = lrp_rand is not None
    picc = encrypt_picc_data(meta_read_key, uid, counter, pad, lrp_rand=lrp_rand)
    enc = (encrypt_file_data(file_read_key, uid, counter, file_data, lrp=lrp)
           if file_data is not None else None)
    covered = url_mac_input(enc) if mac_input is None else mac_input
    return SunMessage(picc=picc, cmac=sdm_mac(file_read_key, uid, counter, covered, lrp=lrp),
                      enc=enc)


# -- reading SUN URLs from tags (reader-side glue) -----------------------------------------
#
# Our SUN URL: ``<base>?picc_data=<32 hex>[&enc=<hex>]&cmac=<16 hex>``. The MAC covers the
# ENC text and ``&cmac=`` (AN12196 layout), so product or member identity is taken ONLY from
# the decrypted file data (``key=value;key=value``, space-padded to whole AES blocks) and the
# UID: plain query parameters are not authenticated and are ignored.

SunKind = Literal["product", "member"]
PICC_PARAM = "picc_data"
ENC_PARAM = "enc"
CMAC_PARAM = "cmac"
MAX_FILE_FIELDS = 32


@dataclass(frozen=True)
class SunKeyEntry:
    """Keys for the SUN tags whose URL starts with ``url_prefix``, and what those tags are.

    ``file_read_key`` is one key for all tags, or a function of the UID for keys diversified
    per tag.
    """

    url_prefix: str
    kind: SunKind
    meta_read_key: bytes
    file_read_key: bytes | Callable[[bytes], bytes]

    def file_key_for(self, uid: bytes) -> bytes:
        key = self.file_read_key
        return key if isinstance(key, bytes) else key(uid)


class CounterLookup(Protocol):
    """Read side of :class:`CounterStore`: the last accepted counter for a UID."""

    def last_counter(self, uid: bytes) -> int | None: ...


@dataclass(frozen=True)
class SunIdentity:
    """What a SUN tag proved about itself, or why it was refused.

    Field names follow ``pos_loyalty.nfc.events.TapEvent`` (kind, uid, card_id, product,
    verified, reason) so the reader builds its event from this one to one. ``code`` is a
    short machine-readable refusal class: ``malformed``, ``unknown_key``, ``tampered``,
    ``copied``, ``replayed``.
    """

    kind: Literal["product", "member", "refused"]
    uid: str | None = None
    counter: int | None = None
    card_id: str | None = None
    product: dict[str, str] | None = None
    verified: bool = False
    reason: str | None = None
    code: str | None = None


def pack_file_data(fields: Mapping[str, str]) -> bytes:
    """``key=value;key=value`` as ASCII, space-padded to whole AES blocks, for provisioning."""
    for key, value in fields.items():
        text = key + value
        if any(c in text for c in ";=") or not text.isascii() or not text.isprintable():
            raise SunFormatError(f"field {key!r} must be printable ASCII without ';' or '='")
    raw = ";".join(f"{k}={v}" for k, v in fields.items()).encode("ascii")
    pad = -len(raw) % BLOCK if raw else BLOCK
    return raw + b" " * pad


def parse_file_data(data: bytes) -> dict[str, str] | None:
    """Inverse of :func:`pack_file_data`; None if the bytes are not that layout."""
    try:
        text = data.decode("ascii").rstrip(" \x00")
    except UnicodeDecodeError:
        return None
    if not text:
        return {}
    fields: dict[str, str] = {}
    for part in text.split(";"):
        key, sep, value = part.partition("=")
        if not sep or not key or key in fields or not part.isprintable():
            return None
        fields[key] = value
    return fields if len(fields) <= MAX_FILE_FIELDS else None


def _refused(code: str, reason: str, uid: bytes | None = None,
             counter: int | None = None) -> SunIdentity:
    return SunIdentity("refused", uid=uid.hex().upper() if uid is not None else None,
                       counter=counter, reason=reason, code=code)


def _sun_params(uri: str) -> tuple[dict[str, tuple[int, str]], str] | str:
    """Query parameters with the offset of each value, or a reason they cannot be used."""
    base, sep, query = uri.partition("?")
    if not sep:
        return "not a SUN URL: it has no query"
    offset = len(base) + 1
    params: dict[str, tuple[int, str]] = {}
    for part in query.split("&"):
        key, eq, value = part.partition("=")
        if key in (PICC_PARAM, ENC_PARAM, CMAC_PARAM):
            if key in params:
                return f"not a SUN URL: '{key}' appears twice"
            params[key] = (offset + len(key) + len(eq), value)
        offset += len(part) + 1
    for needed in (PICC_PARAM, CMAC_PARAM):
        if needed not in params:
            return f"not a SUN URL: no '{needed}' parameter"
    return params, base


def split_sun_url(uri: str) -> tuple[str, str | None, str, str] | str:
    """(picc hex, enc hex or None, cmac hex, MAC input text) of our SUN URL, or why not."""
    parsed = _sun_params(uri)
    if isinstance(parsed, str):
        return parsed
    params, _ = parsed
    enc = params[ENC_PARAM][1] if ENC_PARAM in params else None
    mac_input = uri[params[ENC_PARAM][0]:params[CMAC_PARAM][0]] if enc is not None else ""
    return params[PICC_PARAM][1], enc, params[CMAC_PARAM][1], mac_input


def _unhex(text: str) -> bytes | None:
    if not text.isascii():
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


def check_sun_uri(uri: str, keys: Iterable[SunKeyEntry],
                  counters: CounterLookup | None = None, *,
                  tag_uid: bytes | None = None) -> SunIdentity:
    """Verify the SUN URL read from a tag (pass ndeflib's ``UriRecord.iri``) against our keys.

    ``tag_uid`` is the UID the reader saw in anticollision, when there is one: a genuine
    NTAG 424 DNA mirrors its own UID, so a URL on a tag with another UID was copied there.
    Pure: nothing is recorded. On a verified identity the caller records ``counter`` for
    ``uid`` (see :func:`accept_sun_uri`), so the same URL read again is refused as replayed.
    """
    parsed = _sun_params(uri)
    if isinstance(parsed, str):
        return _refused("malformed", parsed)
    params, base = parsed
    entry = next((e for e in keys if uri.startswith(e.url_prefix)), None)
    if entry is None:
        return _refused("unknown_key", f"unknown tag issuer: no SUN keys for {base}")
    picc = _unhex(params[PICC_PARAM][1])
    cmac = _unhex(params[CMAC_PARAM][1])
    enc_text = params[ENC_PARAM][1] if ENC_PARAM in params else None
    enc = _unhex(enc_text) if enc_text is not None else None
    if picc is None or cmac is None or (enc_text is not None and enc is None):
        return _refused("malformed", "SUN URL has a value that is not hex")
    try:
        picc_data = decrypt_picc_data(entry.meta_read_key, picc)
    except SunFormatError as exc:
        return _refused("tampered" if len(picc) in (PICC_LEN, PICC_LEN_LRP) else "malformed",
                        str(exc))
    mac_input = (uri[params[ENC_PARAM][0]:params[CMAC_PARAM][0]]
                 if enc_text is not None else "")
    if not mac_input.isascii():
        return _refused("tampered", "SUN URL text under the MAC is not ASCII",
                        picc_data.uid, picc_data.counter)
    last = counters.last_counter(picc_data.uid) if counters is not None else None
    result = verify_sun(entry.meta_read_key, entry.file_key_for(picc_data.uid), picc, cmac,
                        enc=enc, mac_input=mac_input.encode("ascii"), last_counter=last)
    if not result.cmac_valid:
        code = "malformed" if result.uid is None else "tampered"
        return _refused(code, f"forged or tampered tag: {result.reason}", result.uid,
                        result.counter)
    if tag_uid is not None and bytes(tag_uid) != picc_data.uid:
        return _refused("copied", "copied tag: its SUN data belongs to tag "
                        f"{picc_data.uid.hex().upper()}", picc_data.uid, picc_data.counter)
    if not result.valid:
        return _refused("replayed", result.reason or "refused", result.uid, result.counter)
    fields = parse_file_data(result.file_data) if result.file_data is not None else {}
    if fields is None:
        return _refused("malformed", "tag file data is not key=value text",
                        result.uid, result.counter)
    uid_hex = picc_data.uid.hex().upper()
    if entry.kind == "member":
        # no card number on the tag: the verified UID itself is what the store looks up
        return SunIdentity("member", uid=uid_hex, counter=result.counter,
                           card_id=fields.get("card"), verified=True)
    return SunIdentity("product", uid=uid_hex, counter=result.counter, product=fields,
                       verified=True)


def accept_sun_uri(uri: str, keys: Iterable[SunKeyEntry], counters: CounterStore, *,
                   tag_uid: bytes | None = None) -> SunIdentity:
    """:func:`check_sun_uri`, then record the counter of a verified tag in ``counters``."""
    identity = check_sun_uri(uri, keys, counters, tag_uid=tag_uid)
    if identity.verified and identity.uid is not None and identity.counter is not None:
        counters.record(bytes.fromhex(identity.uid), identity.counter)
    return identity
