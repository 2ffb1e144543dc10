"""Issuer key files: reading and writing the Ed25519 key that signs cards and tags.

A key file holds either a PEM PKCS#8 Ed25519 private key (as ``openssl genpkey -algorithm
ed25519`` writes) or the raw 32-byte key as 64 hex digits. Terminals never need it: they are
configured with the public key only (``cards.issuer_keys`` in the terminal config).
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pos_loyalty.errors import ConfigError
from pos_loyalty.nfc.cardformat import Issuer

MAX_KEY_FILE = 16 * 1024


def load_issuer(path: str | Path) -> Issuer:
    """The issuer whose private key is in ``path``; ConfigError naming the file if unusable."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            data = fh.read(MAX_KEY_FILE + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read issuer key: {exc.strerror or exc}", path=str(p)) from exc
    if len(data) > MAX_KEY_FILE:
        raise ConfigError("issuer key file is too large to be a key", path=str(p))
    if data.lstrip().startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"not a readable PEM private key: {exc}", path=str(p)) from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError("the key is not an Ed25519 key", path=str(p))
        return Issuer(key.private_bytes_raw())
    try:
        raw = bytes.fromhex(data.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError) as exc:
        raise ConfigError("expected a PEM Ed25519 key or 64 hex digits", path=str(p)) from exc
    if len(raw) != 32:
        raise ConfigError("a raw Ed25519 key is 64 hex digits", path=str(p))
    return Issuer(raw)


def save_issuer(issuer: Issuer, path: str | Path) -> None:
    """Write the private key as PEM PKCS#8, readable by its owner only; never overwrites."""
    key = Ed25519PrivateKey.from_private_bytes(issuer.private_bytes())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    try:
        fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise ConfigError(f"cannot create key file: {exc.strerror or exc}",
                          path=str(path)) from exc
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
