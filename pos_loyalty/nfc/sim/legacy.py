"""A UID-only legacy card, like a MIFARE Classic 1K: anticollision works, nothing else does.

Without MIFARE Classic authentication (which a reader would need the sector keys for) such a
card answers any command with a NAK and drops back to idle. nfcpy activates it (SAK 0x08) as a
generic ``Type2Tag`` whose NDEF read fails, so the terminal sees a UID and no NDEF: a legacy
card, accepted only where the store enables UID-only cards.
"""

from __future__ import annotations

import os

NAK = b"\x04"  # MIFARE Classic NAK: "invalid operation"


def random_uid4() -> bytes:
    """A random single-size (4-byte) UID that is not a random-ID (0x08..) or NXP (0x04) one."""
    first = os.urandom(1)[0]
    while first in (0x04, 0x08, 0x88):
        first = os.urandom(1)[0]
    return bytes([first]) + os.urandom(3)


class UidOnlyCard:
    """An emulated MIFARE Classic-like card; implements the ``EmulatedTag`` protocol."""

    sens_res = b"\x04\x00"

    def __init__(self, uid: bytes | None = None, *, sel_res: int = 0x08) -> None:
        self.uid = random_uid4() if uid is None else bytes(uid)
        if len(self.uid) not in (4, 7):
            raise ValueError("a MIFARE Classic UID is 4 or 7 bytes")
        self.sel_res = sel_res
        self._mute = False
        self.commands = 0  # frames received after selection, for tests

    def reset(self) -> None:
        """Back to idle."""
        self._mute = False

    def handle(self, frame: bytes) -> bytes | None:
        """NAK the first command (no authentication), then stay silent until reactivated."""
        self.commands += 1
        if self._mute:
            return None
        self._mute = True
        return NAK
