"""Password hashing for console accounts: Argon2id (argon2-cffi), in this module only.

argon2-cffi's defaults are RFC 9106's low-memory profile (64 MiB, 3 passes); a hash made
with older parameters is replaced at the next successful sign-in (:func:`needs_rehash`).
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 10
MAX_LENGTH = 256  # longer input is refused before hashing: hashing cost stays bounded

_hasher = PasswordHasher()
# verified when the user does not exist, so a wrong name costs as long as a wrong password
_DUMMY = _hasher.hash("not a real password, only spends time")


def check_strength(password: str) -> str | None:
    """Why ``password`` cannot be used, or None if it can (length rules, as NIST SP 800-63B)."""
    if len(password) < MIN_LENGTH:
        return f"Enter a password of at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"Enter a password of at most {MAX_LENGTH} characters"
    return None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored`` (None: unknown user, the same time is spent)."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher.verify(stored or _DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)
