"""The exceptions pos-loyalty raises, in one tree.

    LoyaltyError                  base of everything we raise on purpose
    +-- ConfigError               a config or program file is wrong (names file, key, line)
    +-- CardError                 a tag was read but cannot be accepted
    |   +-- ForeignCardError      not one of ours (no NDEF, other format)
    |   +-- ForgedCardError       one of ours in form, but its proof of origin fails
    +-- ProtocolError             the POS serial protocol was broken
    |   +-- LocalProtocolError    we tried to send something invalid
    |   +-- RemoteProtocolError   the peer sent garbage (carries the NAK reason)
    +-- ReaderError               the NFC reader cannot be opened or stopped answering
    +-- SerialLinkError           the serial port cannot be opened or went away
    +-- StoreError                the local or central database refused an operation
    +-- RulesError                a quote cannot be computed (bad basket, unknown member data)
    +-- AuthError                 a server request's credential is refused (401/403)
    +-- SyncError                 central cannot be reached or refused a sync request

Library exceptions (nfc.clf.Error, serial.SerialException, sqlalchemy errors) are translated
into these at the edge with ``raise ... from``, so callers never see them.
"""

from __future__ import annotations


class LoyaltyError(Exception):
    """Base class of every error pos-loyalty raises on purpose."""


class ConfigError(LoyaltyError):
    """A configuration or program file is invalid; the message names file, key and line."""

    def __init__(
        self, message: str, *, path: str | None = None, key: str | None = None,
        line: int | None = None,
    ) -> None:
        self.path = path
        self.key = key
        self.line = line
        where = ":".join(str(p) for p in (path, line) if p is not None)
        prefix = f"{where}: " if where else ""
        keypart = f"key '{key}': " if key else ""
        super().__init__(f"{prefix}{keypart}{message}")


class CardError(LoyaltyError):
    """A tag was read but cannot be accepted; ``reason`` is shown to the cashier."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class ForeignCardError(CardError):
    """The tag is not one of ours: no NDEF message, or a format we do not issue."""


class ForgedCardError(CardError):
    """The tag looks like ours but its signature or SUN message does not verify."""


class ProtocolError(LoyaltyError):
    """The POS serial protocol was broken by one side."""


class LocalProtocolError(ProtocolError):
    """We tried to send something the protocol does not allow."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow; ``reason`` goes into the NAK."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class ReaderError(LoyaltyError):
    """The NFC reader cannot be opened, or it stopped answering."""


class SerialLinkError(LoyaltyError):
    """The serial port cannot be opened, or it went away."""


class StoreError(LoyaltyError):
    """The database refused an operation."""


class RulesError(LoyaltyError):
    """A quote cannot be computed from the given basket or member."""


class AuthError(LoyaltyError):
    """A server request's credential is missing, unknown, revoked, or does not cover it.

    ``status`` is the HTTP answer: 401 (who are you?) or 403 (known, but not allowed).
    """

    def __init__(self, reason: str, *, status: int = 401) -> None:
        self.reason = reason
        self.status = status
        super().__init__(reason)


class SyncError(LoyaltyError):
    """The central server cannot be reached, or refused a sync request (``status`` if any)."""

    def __init__(self, reason: str, *, status: int | None = None) -> None:
        self.reason = reason
        self.status = status
        super().__init__(reason)
