"""The protocol an emulated tag implements so ``TagEmulator`` can present it to a reader.

The emulator owns ISO/IEC 14443-3 (REQA/WUPA, anticollision, select, HLTA) and hands every frame
after selection to :meth:`EmulatedTag.handle` unchanged: Type 2 commands, or RATS and ISO-DEP
blocks for a Type 4 tag. A tag never sees a frame meant for anticollision.
"""

from __future__ import annotations

from typing import Protocol


class EmulatedTag(Protocol):
    """A tag as the emulator drives it; the emulator holds no knowledge of its type."""

    uid: bytes
    """The UID (NFCID1): 4, 7 or 10 bytes."""

    sens_res: bytes
    """ATQA as on the wire, e.g. ``b"\\x44\\x00"`` for an NTAG."""

    sel_res: int
    """SAK sent after the final cascade level: 0x00 Type 2, 0x20 Type 4, 0x08 MIFARE Classic."""

    def reset(self) -> None:
        """Field off/on or a new activation: forget session state and go back to idle."""

    def handle(self, frame: bytes) -> bytes | None:
        """Answer one frame received after selection; None means stay silent."""
