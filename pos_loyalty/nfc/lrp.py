"""NXP's Leakage Resilient Primitive (AN12304), the NTAG 424 DNA's optional LRP mode.

Only what verifying an LRP-mode SUN message needs, reader side (not hardened against side
channels, which matters on the tag, not here): the plaintext and updated-key tables
(algorithms 1 and 2, m = 4, q = 4), the LRP evaluation (algorithm 3), LRICB counter-mode
encryption and decryption without padding, and CMAC over LRP. Pure functions over bytes.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 16
_A = b"\xaa" * BLOCK
_5 = b"\x55" * BLOCK


_ECB = modes.ECB()


def _e(key: bytes, block: bytes) -> bytes:
    # one block, new key every call (LRP re-keys per nibble): ECB gives its output on update,
    # and skipping finalize() and a fresh mode object is a third of the cost of each call
    return Cipher(algorithms.AES(key), _ECB).encryptor().update(block)


def _d(key: bytes, block: bytes) -> bytes:
    return Cipher(algorithms.AES(key), _ECB).decryptor().update(block)


def plaintexts(key: bytes) -> list[bytes]:
    """Algorithm 1: the 16 secret plaintexts P0..P15."""
    h = _e(key, _5)
    out = []
    for _ in range(16):
        out.append(_e(h, _A))
        h = _e(h, _5)
    return out


def updated_keys(key: bytes, count: int = 4) -> list[bytes]:
    """Algorithm 2: the updated keys K'0..K'(count-1)."""
    h = _e(key, _A)
    out = []
    for _ in range(count):
        out.append(_e(h, _A))
        h = _e(h, _5)
    return out


def evaluate(p: list[bytes], kp: bytes, x: bytes, *, final: bool) -> bytes:
    """Algorithm 3: run x's nibbles (high first) through the plaintext table under kp."""
    y = kp
    for byte in x:
        y = _e(y, p[byte >> 4])
        y = _e(y, p[byte & 0x0F])
    return _e(y, bytes(BLOCK)) if final else y


def _increment(counter: bytes) -> bytes:
    n = (int.from_bytes(counter, "big") + 1) % (1 << (8 * len(counter)))
    return n.to_bytes(len(counter), "big")


def _dbl(block: bytes) -> bytes:
    """Multiply by x in GF(2^128) (x^128 + x^7 + x^2 + x + 1), as CMAC derives subkeys."""
    n = int.from_bytes(block, "big") << 1
    if n >> 128:
        n = (n ^ 0x87) & ((1 << 128) - 1)
    return n.to_bytes(BLOCK, "big")


@lru_cache(maxsize=256)
def _tables(key: bytes, u: int) -> tuple[tuple[bytes, ...], bytes]:
    """Plaintexts and updated key ``u`` of a key; cached, as the static tag keys recur."""
    return tuple(plaintexts(key)), updated_keys(key, u + 1)[u]


class Lrp:
    """LRP under ``key`` with updated key number ``u``.

    Every LRP evaluation re-keys AES once per nibble, about 33 AES blocks for 16 bytes, so in
    Python a SUN check in LRP mode costs milliseconds where AES mode costs microseconds.
    """

    def __init__(self, key: bytes, u: int = 0) -> None:
        if len(key) != BLOCK:
            raise ValueError("LRP keys are 16 bytes")
        p, self._kp = _tables(bytes(key), u)
        self._p = list(p)

    def _blocks(self, data: bytes, counter: bytes, encrypt: bool) -> bytes:
        if len(data) % BLOCK:
            raise ValueError("LRICB data must be whole 16-byte blocks")
        out = bytearray()
        for i in range(0, len(data), BLOCK):
            key = evaluate(self._p, self._kp, counter, final=True)
            block = data[i:i + BLOCK]
            out += _e(key, block) if encrypt else _d(key, block)
            counter = _increment(counter)
        return bytes(out)

    def encrypt(self, data: bytes, counter: bytes) -> bytes:
        """LRICBEnc without padding, starting at ``counter``."""
        return self._blocks(data, counter, True)

    def decrypt(self, data: bytes, counter: bytes) -> bytes:
        """LRICBDec without padding, starting at ``counter``."""
        return self._blocks(data, counter, False)

    def cmac(self, data: bytes) -> bytes:
        """CMAC with LRP as the block function (AN12304 section 3.3)."""
        k1 = _dbl(evaluate(self._p, self._kp, bytes(BLOCK), final=True))
        k2 = _dbl(k1)
        whole = len(data) > 0 and len(data) % BLOCK == 0
        last_at = len(data) - BLOCK if whole else len(data) - len(data) % BLOCK
        y = bytes(BLOCK)
        for i in range(0, last_at, BLOCK):
            y = evaluate(self._p, self._kp, bytes(a ^ b for a, b in zip(
                y, data[i:i + BLOCK], strict=True)), final=True)
        last = data[last_at:]
        if whole:
            sub = k1
        else:
            last = last + b"\x80" + bytes(BLOCK - len(last) - 1)
            sub = k2
        y = bytes(a ^ b ^ c for a, b, c in zip(y, last, sub, strict=True))
        return evaluate(self._p, self._kp, y, final=True)
