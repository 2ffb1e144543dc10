"""What a product tag's URL proves, decided without I/O (the counter is checked by the caller).

Two kinds of tag lead to ``/p/<product>``:

- NTAG21x with our Ed25519-signed token (``?u=<UID>&k=<key id>&s=<signature>``, written by
  ``pos-loyalty tag write``): the signature binds product and UID, but the URL is the same on
  every read, so a copy cannot be told apart: ``signed``.
- NTAG 424 DNA with SUN (``?picc_data=..[&enc=..]&cmac=..``): verified with the configured
  meta key and the tag's file key (diversified from the master key and its UID, AN10922).
  A valid MAC gives ``sun`` with the UID and read counter; whether the counter is new is
  decided against central's ``sun_counters`` in the same transaction that records it.

Anything else (a bad MAC or signature, an unknown key, no keys configured) is ``forged`` or
``unverified``. Product identity comes from authenticated data only: the signed product, or
the ``sku`` field of SUN file data when there is one (else the path, which the MAC does not
cover, and then the MAC still proves the tag is one of ours).
"""

from __future__ import annotations

import base64
import binascii
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal

from cryptography.exceptions import InvalidSignature

from pos_loyalty.config import SunKeys
from pos_loyalty.nfc.cardformat import CardTrust, product_signed_bytes, valid_product
from pos_loyalty.nfc.diversify import tag_key
from pos_loyalty.nfc.sun import SunKeyEntry, check_sun_uri

Proof = Literal["sun", "signed", "forged", "unverified"]
MAX_QUERY = 1024


@dataclass(frozen=True)
class TagProof:
    """What the URL proved: ``proof``, the tag's UID (upper-case hex) and SUN read counter."""

    proof: Proof
    uid: str | None = None
    counter: int | None = None
    reason: str = ""


@dataclass(frozen=True)
class TagKeys:
    """The keys the phone pages check tags with (built once from the server settings)."""

    trust: CardTrust
    sun: tuple[SunKeyEntry, ...]
    product_url: str | None

    @classmethod
    def build(cls, sun: SunKeys | None, issuer_keys: Sequence[str]) -> TagKeys:
        entries: tuple[SunKeyEntry, ...] = ()
        url = None
        if sun is not None and sun.product_url is not None:
            url = sun.product_url
            file_key = partial(tag_key, sun.file_master_key, system_id=sun.system_id)
            entries = (SunKeyEntry(url, "product", sun.meta_key, file_key),)
        return cls(CardTrust.from_hex(issuer_keys), entries, url)


def _signed(sku: str, query: dict[str, list[str]], keys: TagKeys) -> TagProof:
    try:
        kid = bytes.fromhex(query["k"][0])
        uid = bytes.fromhex(query["u"][0])
        s = query["s"][0]
        sig = base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    except (ValueError, binascii.Error):
        return TagProof("forged", reason="unreadable signature fields")
    if len(kid) != 4 or len(sig) != 64 or not 4 <= len(uid) <= 10:
        return TagProof("forged", reason="wrong signature fields")
    key = keys.trust.public_key(kid)
    if key is None:
        return TagProof("unverified", reason=f"unknown issuer key {kid.hex()}")
    try:
        key.verify(sig, product_signed_bytes(kid, uid, sku))
    except InvalidSignature:
        return TagProof("forged", uid.hex().upper(), reason="signature does not match")
    return TagProof("signed", uid.hex().upper())


def _sun(sku: str, raw_query: str, keys: TagKeys) -> TagProof:
    if keys.product_url is None:
        return TagProof("unverified", reason="no SUN keys configured")
    uri = f"{keys.product_url}{sku}?{raw_query}"
    identity = check_sun_uri(uri, keys.sun)  # counters: checked when recorded
    if not identity.verified:
        return TagProof("forged", identity.uid, identity.counter,
                        identity.reason or "SUN message refused")
    fields = identity.product or {}
    if fields.get("sku", sku) != sku:
        return TagProof("forged", identity.uid, identity.counter,
                        "the tag belongs to another product")
    return TagProof("sun", identity.uid, identity.counter)


def parse_product_url(url: str) -> tuple[str, str] | None:
    """(product code, raw query) of ``https://<host>/p/<product>?<query>``, else None."""
    base, sep, query = url.partition("?")
    head, slash, sku = base.rpartition("/p/")
    if not sep or not slash or not head.startswith("https://") or not valid_product(sku):
        return None
    return sku, query


def prove(sku: str, raw_query: str, keys: TagKeys) -> TagProof:
    """What the query of ``/p/<sku>?<raw_query>`` proves about the tag; never raises."""
    if len(raw_query) > MAX_QUERY:
        return TagProof("forged", reason="query too long")
    try:
        query = urllib.parse.parse_qs(raw_query, keep_blank_values=True, max_num_fields=8)
    except ValueError:
        return TagProof("forged", reason="unreadable query")
    if any(len(v) != 1 for v in query.values()):
        return TagProof("forged", reason="a parameter appears twice")
    names = set(query)
    if names == {"u", "k", "s"}:
        return _signed(sku, query, keys)
    if {"picc_data", "cmac"} <= names <= {"picc_data", "enc", "cmac"}:
        return _sun(sku, raw_query, keys)
    return TagProof("unverified", reason="no tag data in the link")


# -- personalising NTAG 424 DNA product tags ---------------------------------------------------

PLACEHOLDER = "0"
NLEN_BYTES = 2  # the NDEF file starts with the message length (Type 4 Tag)
PERSONALISATION_FIELDS = ("uid", "sku", "url", "file_data", "picc_data_offset",
                          "sdm_mac_input_offset", "enc_offset", "enc_length", "sdm_mac_offset",
                          "file_read_key")


def personalisation(sku: str, uid: bytes, sun: SunKeys) -> dict[str, str]:
    """One row of the personalisation file an encoder writes a tag from.

    The NDEF file holds one URI record ``<product_url><sku>?picc_data=0..&enc=0..&cmac=0..``;
    the offsets (from the start of the NDEF file, NLEN included) are where the tag mirrors
    PICC data, the encrypted ``sku=<sku>`` file data, and the MAC, which covers the text from
    the ENC data up to the MAC (AN12196's layout, the one central and terminals verify).
    ``file_read_key`` is the tag's own key, diversified from the master key (AN10922).
    """
    import ndef as ndeflib

    from pos_loyalty.nfc.sun import MAC_LEN, PICC_LEN, pack_file_data

    if sun.product_url is None:
        raise ValueError("the [sun] keys have no product_url")
    if len(uid) != 7:
        raise ValueError("an NTAG 424 DNA UID is 7 bytes")
    data = pack_file_data({"sku": sku})
    url = (f"{sun.product_url}{sku}?picc_data={PLACEHOLDER * 2 * PICC_LEN}"
           f"&enc={PLACEHOLDER * 2 * len(data)}&cmac={PLACEHOLDER * 2 * MAC_LEN}")
    octets = b"".join(ndeflib.message_encoder([ndeflib.UriRecord(url)]))
    file_ = len(octets).to_bytes(NLEN_BYTES, "big") + octets

    def at(marker: str) -> int:
        return file_.index(marker.encode("ascii")) + len(marker)

    enc_at = at("&enc=")
    return {"uid": uid.hex().upper(), "sku": sku, "url": url, "file_data": data.hex().upper(),
            "picc_data_offset": str(at("?picc_data=")), "sdm_mac_input_offset": str(enc_at),
            "enc_offset": str(enc_at), "enc_length": str(2 * len(data)),
            "sdm_mac_offset": str(at("&cmac=")),
            "file_read_key": tag_key(sun.file_master_key, uid, sun.system_id).hex().upper()}
