"""Member card and product tag formats, and the pure decision of what a tapped tag is.

Member card (NTAG21x, NDEF): one NFC Forum external type record ``pos-loyalty.org:member``
whose payload is::

    version (1 byte, 0x01) | issuer key id (4) | card id length n (1) | card id (n, ASCII) |
    Ed25519 signature (64)

The signature covers ``b"pos-loyalty member card v1\\0" | key id | len(uid) | uid | n | card id``:
domain separated, and bound to the tag's UID, so the record copied onto another tag fails.

Product packaging tag: one URI record a phone opens, signed the same way over the product code
and the UID (domain ``b"pos-loyalty product tag v1\\0"``)::

    https://<host>/p/<product>?u=<UID hex>&k=<key id hex>&s=<signature, base64url>

:func:`classify` takes what the reader read (UID, nfcpy's tag type, the NDEF message octets or
None) and a :class:`CardTrust`, and always returns a :class:`TapEvent`: a verified member, a
product, or a refusal whose reason a cashier can read. It does no I/O and never raises on tag
content. The issuer key id is the first 4 bytes of SHA-256 over the raw 32-byte public key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import ndef as ndeflib
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pos_loyalty.nfc.events import TapEvent

MEMBER_RECORD_TYPE = "urn:nfc:ext:pos-loyalty.org:member"
URI_RECORD_TYPE = "urn:nfc:wkt:U"
MEMBER_FORMAT_VERSION = 1
MEMBER_DOMAIN = b"pos-loyalty member card v1\x00"
PRODUCT_DOMAIN = b"pos-loyalty product tag v1\x00"
DEFAULT_PRODUCT_BASE = "https://loyalty.example"
MAX_NDEF_BYTES = 8192  # more than any NTAG21x or Type 4 NDEF file we issue; longer is refused

_CARD_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")
_PRODUCT_RE = re.compile(r"[A-Za-z0-9._-]{1,32}")
_PRODUCT_PATH_RE = re.compile(r"/p/([A-Za-z0-9._-]{1,32})")
_LEGACY_TYPES = ("MIFARE Classic",)


def key_id(public_key: bytes) -> bytes:
    """The 4-byte issuer key id carried on cards: SHA-256(raw public key)[:4]."""
    return hashlib.sha256(public_key).digest()[:4]


def valid_card_id(card_id: str) -> bool:
    """Card numbers are 1-32 characters of A-Z, a-z, 0-9, '-' and '_'."""
    return _CARD_ID_RE.fullmatch(card_id) is not None


def valid_product(product: str) -> bool:
    """Product codes (SKU, GTIN) are 1-32 characters of A-Z, a-z, 0-9, '.', '-' and '_'."""
    return _PRODUCT_RE.fullmatch(product) is not None


def member_signed_bytes(kid: bytes, uid: bytes, card_id: str) -> bytes:
    """The exact bytes an issuer signs for a member card."""
    cid = card_id.encode("ascii")
    return MEMBER_DOMAIN + kid + bytes([len(uid)]) + uid + bytes([len(cid)]) + cid


def product_signed_bytes(kid: bytes, uid: bytes, product: str) -> bytes:
    """The exact bytes an issuer signs for a product tag."""
    pid = product.encode("ascii")
    return PRODUCT_DOMAIN + kid + bytes([len(uid)]) + uid + bytes([len(pid)]) + pid


class Issuer:
    """Holds an Ed25519 private key and signs card and tag content (provisioning side only)."""

    def __init__(self, private_key: bytes) -> None:
        if len(private_key) != 32:
            raise ValueError("an Ed25519 private key is 32 bytes")
        self._key = Ed25519PrivateKey.from_private_bytes(private_key)
        self.public_key: bytes = self._key.public_key().public_bytes_raw()
        self.key_id: bytes = key_id(self.public_key)

    @classmethod
    def generate(cls) -> Issuer:
        """A new random issuer key."""
        return cls(Ed25519PrivateKey.generate().private_bytes_raw())

    def private_bytes(self) -> bytes:
        """The raw 32-byte private key, for saving to a key file."""
        return self._key.private_bytes_raw()

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature (64 bytes) over ``message``."""
        return self._key.sign(message)


UriVerifier = Callable[[bytes, str, str], TapEvent | None]
"""``(uid, tag_type, uri) -> TapEvent | None``: an event for URIs it recognises (NTAG 424 DNA
SUN URLs, say), None for any other URI. Plugged into :class:`CardTrust`."""


@dataclass(frozen=True)
class CardTrust:
    """What the terminal trusts: issuer public keys, revoked card numbers, legacy UID cards.

    ``issuer_keys`` are raw 32-byte Ed25519 public keys. ``accept_legacy_uid`` lets tags that
    carry no NDEF at all (MIFARE Classic and other UID-only cards already in customers' wallets)
    through as members with no ``card_id`` (the terminal looks them up by UID only) and
    ``verified=False`` (they earn, but redeem only where store IT allows it).
    ``uri_verifiers`` are asked, in order, about URI records that are not our signed product
    format (e.g. a SUN checker that also records counters to refuse replays).
    """

    issuer_keys: tuple[bytes, ...] = ()
    revoked_cards: frozenset[str] = frozenset()
    accept_legacy_uid: bool = False
    uri_verifiers: tuple[UriVerifier, ...] = ()
    _by_id: dict[bytes, Ed25519PublicKey] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        for raw in self.issuer_keys:
            if len(raw) != 32:
                raise ValueError("issuer public keys are raw 32-byte Ed25519 keys")
            self._by_id[key_id(raw)] = Ed25519PublicKey.from_public_bytes(raw)

    @classmethod
    def from_hex(
        cls, keys: Iterable[str], *, revoked: Iterable[str] = (),
        accept_legacy_uid: bool = False, uri_verifiers: Iterable[UriVerifier] = (),
    ) -> CardTrust:
        """Build from hex-encoded public keys (as in a config file)."""
        raw = tuple(bytes.fromhex(k) for k in keys)
        return cls(raw, frozenset(revoked), accept_legacy_uid, tuple(uri_verifiers))

    def public_key(self, kid: bytes) -> Ed25519PublicKey | None:
        """The trusted key with this id, if any."""
        return self._by_id.get(kid)


# -- building (provisioning) -------------------------------------------------------------------


def member_card_ndef(card_id: str, uid: bytes, issuer: Issuer) -> bytes:
    """NDEF message octets of a member card for the tag with this UID."""
    if not valid_card_id(card_id):
        raise ValueError(f"invalid card id {card_id!r}: 1-32 of A-Z a-z 0-9 - _")
    cid = card_id.encode("ascii")
    sig = issuer.sign(member_signed_bytes(issuer.key_id, uid, card_id))
    payload = bytes([MEMBER_FORMAT_VERSION]) + issuer.key_id + bytes([len(cid)]) + cid + sig
    return b"".join(ndeflib.message_encoder([ndeflib.Record(MEMBER_RECORD_TYPE, "", payload)]))


def product_tag_uri(
    product: str, uid: bytes, issuer: Issuer, base_url: str = DEFAULT_PRODUCT_BASE,
) -> str:
    """The signed https URI a product tag carries."""
    if not valid_product(product):
        raise ValueError(f"invalid product code {product!r}: 1-32 of A-Z a-z 0-9 . - _")
    if not base_url.startswith("https://"):
        raise ValueError("product tag URIs are https")
    sig = issuer.sign(product_signed_bytes(issuer.key_id, uid, product))
    s = base64.urlsafe_b64encode(sig).rstrip(b"=").decode("ascii")
    return (f"{base_url.rstrip('/')}/p/{product}?u={uid.hex().upper()}"
            f"&k={issuer.key_id.hex()}&s={s}")


def product_tag_ndef(
    product: str, uid: bytes, issuer: Issuer, base_url: str = DEFAULT_PRODUCT_BASE,
) -> bytes:
    """NDEF message octets of a product tag: one URI record, readable by any phone."""
    uri = product_tag_uri(product, uid, issuer, base_url)
    return b"".join(ndeflib.message_encoder([ndeflib.UriRecord(uri)]))


# -- classifying (the terminal) ----------------------------------------------------------------


def _refused(uid: str, tag_type: str, reason: str, card_id: str | None = None) -> TapEvent:
    return TapEvent("refused", uid, tag_type, card_id=card_id, reason=reason)


def _describe(record: ndeflib.Record) -> str:
    rtype = str(record.type)
    names = {URI_RECORD_TYPE: "a web link", "urn:nfc:wkt:T": "text",
             "urn:nfc:wkt:Sp": "a smart poster", "urn:nfc:wkt:Hs": "a handover request"}
    if rtype in names:
        return names[rtype]
    if rtype.startswith("urn:nfc:ext:"):
        return f"an app record ({rtype[12:][:40]})"
    if "/" in rtype:
        return f"data of type {rtype[:40]}"
    return "unknown data"


def _verify(key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def _member(uidhex: str, uid: bytes, tag_type: str, payload: bytes,
            trust: CardTrust) -> TapEvent:
    if len(payload) < 1 + 4 + 1 + 1 + 64:
        return _refused(uidhex, tag_type, "damaged member card: its data is too short")
    if payload[0] != MEMBER_FORMAT_VERSION:
        return _refused(uidhex, tag_type,
                        f"member card format v{payload[0]} is not supported by this terminal")
    kid, n = payload[1:5], payload[5]
    if len(payload) != 6 + n + 64:
        return _refused(uidhex, tag_type, "damaged member card: wrong data length")
    try:
        card_id = payload[6:6 + n].decode("ascii")
    except UnicodeDecodeError:
        card_id = ""
    if not valid_card_id(card_id):
        return _refused(uidhex, tag_type, "damaged member card: invalid card number")
    key = trust.public_key(kid)
    if key is None:
        return _refused(uidhex, tag_type,
                        f"card from an unknown issuer (key {kid.hex()}): not ours", card_id)
    if not _verify(key, payload[6 + n:], member_signed_bytes(kid, uid, card_id)):
        return _refused(uidhex, tag_type,
                        "forged or copied card: its signature does not match this card",
                        card_id)
    if card_id in trust.revoked_cards:
        return _refused(uidhex, tag_type, f"card {card_id} has been blocked (revoked)", card_id)
    return TapEvent("member", uidhex, tag_type, card_id=card_id, verified=True)


def _product(uidhex: str, uid: bytes, tag_type: str, uri: str,
             trust: CardTrust) -> TapEvent | None:
    """A product tag event, or None when the URI is not in our product format."""
    try:
        parts = urllib.parse.urlsplit(uri)
        query = urllib.parse.parse_qs(parts.query, keep_blank_values=True, strict_parsing=True,
                                      max_num_fields=8)
    except ValueError:
        return None
    path = _PRODUCT_PATH_RE.fullmatch(parts.path)
    if parts.scheme != "https" or path is None or sorted(query) != ["k", "s", "u"]:
        return None
    if any(len(v) != 1 for v in query.values()):
        return None
    product = path.group(1)
    info = {"product": product, "url": uri}
    try:
        kid = bytes.fromhex(query["k"][0])
        tag_uid = bytes.fromhex(query["u"][0])
        s = query["s"][0]
        sig = base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    except (ValueError, binascii.Error):
        return _refused(uidhex, tag_type, "damaged product tag: unreadable signature fields")
    if len(kid) != 4 or len(sig) != 64:
        return _refused(uidhex, tag_type, "damaged product tag: wrong signature fields")
    key = trust.public_key(kid)
    if key is None:
        return _refused(uidhex, tag_type,
                        f"product tag from an unknown issuer (key {kid.hex()})")
    if tag_uid != uid:
        return _refused(uidhex, tag_type, "copied product tag: it was made for another tag")
    if not _verify(key, sig, product_signed_bytes(kid, uid, product)):
        return _refused(uidhex, tag_type, "forged product tag: its signature does not match")
    return TapEvent("product", uidhex, tag_type, product=info, verified=True)


def _decode(octets: bytes) -> list[ndeflib.Record] | None:
    try:
        return list(ndeflib.message_decoder(
            octets, errors="strict", known_types={URI_RECORD_TYPE: ndeflib.UriRecord}))
    except (ndeflib.DecodeError, ValueError, TypeError, UnicodeError):
        return None


def classify(uid: bytes, tag_type: str, ndef: bytes | None,
             trust: CardTrust) -> TapEvent:
    """Decide what a tapped tag is; never raises on tag content.

    ``ndef`` (the NDEF message octets) is None when the tag holds no NDEF data area at all
    (not NFC Forum formatted, or a UID-only card); ``b""`` when it is formatted but empty.
    """
    uidhex = uid.hex().upper()
    if ndef is None:
        if trust.accept_legacy_uid and uid:
            # looked up by UID only (card_id None): a card number that happens to equal
            # the UID hex must not be reachable by a tag that proves nothing
            return TapEvent("member", uidhex, tag_type, verified=False)
        if tag_type.startswith(_LEGACY_TYPES):
            return _refused(uidhex, tag_type,
                            f"{tag_type} UID-only card: legacy cards are not enabled here")
        return _refused(uidhex, tag_type, "blank tag: no NFC data on it")
    if len(ndef) > MAX_NDEF_BYTES:
        return _refused(uidhex, tag_type, "unreadable tag: its data is far too long")
    if ndef == b"":
        return _refused(uidhex, tag_type, "blank tag: nothing written on it")
    records = _decode(ndef)
    if records is None:
        return _refused(uidhex, tag_type, "unreadable tag: damaged NFC data")
    if all(r.type == "" and not r.data for r in records):
        return _refused(uidhex, tag_type, "blank tag: nothing written on it")
    members = [r for r in records if str(r.type).lower() == MEMBER_RECORD_TYPE]
    if len(members) > 1:
        return _refused(uidhex, tag_type, "damaged member card: more than one card record")
    if members:
        return _member(uidhex, uid, tag_type, bytes(members[0].data), trust)
    for record in records:
        if isinstance(record, ndeflib.UriRecord):
            try:
                iri = str(record.iri)
            except (ValueError, UnicodeError):
                continue
            event = _product(uidhex, uid, tag_type, iri, trust)
            for verify in trust.uri_verifiers:
                if event is not None:
                    break
                event = verify(uid, tag_type, iri)
            if event is not None:
                return event
    return _refused(uidhex, tag_type,
                    f"foreign tag: not a loyalty card (it carries {_describe(records[0])})")
