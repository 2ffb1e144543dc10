"""Per-tag keys from one master key: NXP AN10922 AES-128 key diversification.

A chain provisions every NTAG 424 DNA with its own file read key, derived from a master key
and the tag's UID, so one tag's key read out of its chip opens no other tag. AN10922
(section 2.2) derives the key as a CMAC under the master key of ``01 || M`` where M is the
diversification input (1 to 31 bytes: the UID, optionally an application id and a system
identifier). It differs from a plain AES-CMAC only in its padding: the input is always
padded to two blocks (32 bytes), so for short inputs the result is not ``CMAC(01 || M)``.

Written here rather than taken from a library because it is a dozen lines over
``cryptography``'s AES, and the Python packages that implement it pull in pycryptodome.
Pure: bytes in, bytes out.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 16
KEY_LEN = 16
MAX_INPUT = 2 * BLOCK - 1  # M is at most 31 bytes: with the 0x01 constant, two blocks
AES128_CONSTANT = 0x01


def _dbl(block: bytes) -> bytes:
    """Multiply by x in GF(2^128), as CMAC derives its subkeys."""
    n = int.from_bytes(block, "big") << 1
    if n >> 128:
        n = (n ^ 0x87) & ((1 << 128) - 1)
    return n.to_bytes(BLOCK, "big")


def cmac_subkeys(key: bytes) -> tuple[bytes, bytes]:
    """CMAC subkeys K1 and K2 of an AES-128 key (AN10922 steps 3 and 4)."""
    if len(key) != KEY_LEN:
        raise ValueError(f"an AES-128 key is {KEY_LEN} bytes, got {len(key)}")
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    k0 = enc.update(bytes(BLOCK)) + enc.finalize()
    k1 = _dbl(k0)
    return k1, _dbl(k1)


def diversify_aes128(master_key: bytes, m: bytes) -> bytes:
    """The AES-128 key diversified from ``master_key`` with input ``m`` (1-31 bytes)."""
    if not 1 <= len(m) <= MAX_INPUT:
        raise ValueError(f"diversification input must be 1-{MAX_INPUT} bytes, got {len(m)}")
    k1, k2 = cmac_subkeys(master_key)
    d = bytes([AES128_CONSTANT]) + bytes(m)
    if len(d) < 2 * BLOCK:
        d += b"\x80" + bytes(2 * BLOCK - len(d) - 1)
        sub = k2
    else:
        sub = k1
    d = d[:BLOCK] + bytes(a ^ b for a, b in zip(d[BLOCK:], sub, strict=True))
    enc = Cipher(algorithms.AES(master_key), modes.CBC(bytes(BLOCK))).encryptor()
    return (enc.update(d) + enc.finalize())[BLOCK:]


def tag_key(master_key: bytes, uid: bytes, system_id: bytes) -> bytes:
    """The key of the tag with this UID: AN10922 over ``UID || system identifier``."""
    if not uid:
        raise ValueError("a tag key needs the tag's UID")
    return diversify_aes128(master_key, bytes(uid) + bytes(system_id))
