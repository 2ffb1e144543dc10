"""NXP NTAG213/215/216 emulation (NFC Forum Type 2), as nfcpy's NTAG21x classes expect it.

Memory is pages of 4 bytes laid out as in the NXP datasheets: UID and BCCs in pages 0-2, the
static lock bytes in page 2, the capability container (OTP) in page 3, user memory from page 4,
then the dynamic lock bytes, CFG0 (MIRROR, RFUI, MIRROR_PAGE, AUTH0), CFG1 (ACCESS), PWD and
PACK. Commands: READ 30, FAST_READ 3A, WRITE A2, GET_VERSION 60, READ_SIG 3C, PWD_AUTH 1B.

Behaviour nfcpy relies on:
- ``1A 00`` (MIFARE Ultralight C authenticate) gets silence, as the architecture note found:
  nfcpy probes it with a 10 ms timeout, expects no answer from an NTAG, re-senses, then sends
  GET_VERSION, whose answer picks ``nfc.tag.tt2_nxp.NTAG213`` and its siblings.
- A NAK (one byte 0x00) sends the tag back to idle: it stays silent until the next activation.
- Lock bits (static, dynamic, CFGLCK) only ever go from 0 to 1 and writes to locked pages NAK;
  the capability container is one-time programmable (written bits are OR-ed in).
- PWD_AUTH with the right password answers PACK and opens pages from AUTH0 on; PWD and PACK
  always read as zeros.

The originality signature is not NXP's ECC signature (that needs NXP's key): it is a fixed
digest of the UID, enough for nfcpy's ``signature`` attribute and for tests.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import reduce
from operator import xor

ACK = b"\x0a"
NAK = b"\x00"


@dataclass(frozen=True)
class NtagModel:
    """Memory map of one NTAG21x product."""

    name: str
    version: bytes  # GET_VERSION answer
    pages: int  # total pages, 0 .. pages-1
    cc_size: int  # CC byte 2: user memory in units of 8 bytes
    dynlock_page: int  # dynamic lock bytes; CFG0, CFG1, PWD, PACK follow
    dynlock_pages_per_bit: int

    @property
    def cfg_page(self) -> int:
        return self.dynlock_page + 1

    @property
    def pwd_page(self) -> int:
        return self.dynlock_page + 3

    @property
    def pack_page(self) -> int:
        return self.dynlock_page + 4

    @property
    def user_bytes(self) -> int:
        return self.cc_size * 8


MODELS: dict[str, NtagModel] = {
    "NTAG213": NtagModel("NTAG213", bytes.fromhex("0004040201000F03"), 45, 0x12, 0x28, 2),
    "NTAG215": NtagModel("NTAG215", bytes.fromhex("0004040201001103"), 135, 0x3E, 0x82, 16),
    "NTAG216": NtagModel("NTAG216", bytes.fromhex("0004040201001303"), 231, 0x6D, 0xE2, 16),
}

DEFAULT_PASSWORD = b"\xff\xff\xff\xff"
_NTAG213_LOCK_TLV = bytes.fromhex("0103A00C34")  # Lock Control TLV shipped on NTAG213


def random_nxp_uid() -> bytes:
    """A fresh 7-byte UID with NXP's manufacturer byte 0x04, so nfcpy tries the NXP classes."""
    return b"\x04" + os.urandom(6)


def ndef_tlv(ndef: bytes) -> bytes:
    """The NDEF Message TLV (1- or 3-byte length) followed by a Terminator TLV."""
    if len(ndef) < 0xFF:
        return b"\x03" + bytes([len(ndef)]) + ndef + b"\xfe"
    return b"\x03\xff" + len(ndef).to_bytes(2, "big") + ndef + b"\xfe"


class Ntag21x:
    """An emulated NTAG213/215/216; implements the ``EmulatedTag`` protocol."""

    sens_res = b"\x44\x00"
    sel_res = 0x00

    def __init__(
        self, model: str = "NTAG213", *, uid: bytes | None = None, ndef: bytes | None = None,
        formatted: bool = True, password: bytes = DEFAULT_PASSWORD, pack: bytes = b"\x00\x00",
    ) -> None:
        if model not in MODELS:
            raise ValueError(f"unknown NTAG model {model!r}; known: {', '.join(MODELS)}")
        self.model = MODELS[model]
        self.uid = random_nxp_uid() if uid is None else bytes(uid)
        if len(self.uid) != 7:
            raise ValueError("an NTAG21x UID is 7 bytes")
        if len(password) != 4 or len(pack) != 2:
            raise ValueError("password is 4 bytes and PACK 2 bytes")
        m = self.model
        self._mem = bytearray(m.pages * 4)
        u = self.uid
        bcc0 = reduce(xor, b"\x88" + u[0:3])
        bcc1 = reduce(xor, u[3:7])
        self._mem[0:12] = u[0:3] + bytes([bcc0]) + u[3:7] + bytes([bcc1, 0x48, 0x00, 0x00])
        if formatted or ndef is not None:
            self._mem[12:16] = bytes([0xE1, 0x10, m.cc_size, 0x00])
            prefix = _NTAG213_LOCK_TLV if m.name == "NTAG213" else b""
            area = prefix + ndef_tlv(b"" if ndef is None else ndef)
            if len(area) > m.user_bytes:
                raise ValueError(
                    f"NDEF message of {len(ndef or b'')} bytes does not fit an {m.name}")
            self._mem[16:16 + len(area)] = area
        cfg = m.cfg_page * 4
        self._mem[cfg:cfg + 8] = bytes([0x04, 0x00, 0x00, 0xFF, 0x00, 0x05, 0x00, 0x00])
        self._mem[m.pwd_page * 4:m.pwd_page * 4 + 4] = password
        self._mem[m.pack_page * 4:m.pack_page * 4 + 2] = pack
        self._authenticated = False
        self._mute = False
        self.reads = 0  # READ/FAST_READ commands answered, for tests

    # -- inspection (tests, provisioning checks) --------------------------------------------

    @property
    def memory(self) -> bytes:
        """A copy of the whole memory, PWD and PACK included."""
        return bytes(self._mem)

    def page(self, n: int) -> bytes:
        """The 4 bytes of page ``n`` as stored."""
        return bytes(self._mem[n * 4:n * 4 + 4])

    @property
    def static_lock(self) -> bytes:
        """LOCK0 and LOCK1 (page 2, bytes 2-3)."""
        return bytes(self._mem[10:12])

    @property
    def dynamic_lock(self) -> bytes:
        """The three dynamic lock bytes."""
        return bytes(self._mem[self.model.dynlock_page * 4:self.model.dynlock_page * 4 + 3])

    @property
    def config_locked(self) -> bool:
        """CFGLCK: CFG0 and CFG1 are frozen."""
        return bool(self._mem[self.model.cfg_page * 4 + 4] & 0x40)

    def set_page(self, n: int, data: bytes) -> None:
        """Raw page write, bypassing locks and OTP rules (factory or cloning tools, tests)."""
        if len(data) != 4 or not 0 <= n < self.model.pages:
            raise ValueError("a page is 4 bytes within memory")
        self._mem[n * 4:n * 4 + 4] = data

    def load_user_memory(self, data: bytes) -> None:
        """Overwrite user memory from page 4 (as a cloning tool would); CC becomes NDEF."""
        if len(data) > self.model.user_bytes:
            raise ValueError("data larger than user memory")
        self._mem[12:16] = bytes([0xE1, 0x10, self.model.cc_size, 0x00])
        self._mem[16:16 + len(data)] = data

    # -- EmulatedTag ------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to idle: authentication is lost, a NAK-muted tag listens again."""
        self._authenticated = False
        self._mute = False

    def handle(self, frame: bytes) -> bytes | None:
        """Answer one Type 2 command."""
        if self._mute or not frame:
            return None
        cmd = frame[0]
        if cmd == 0x30 and len(frame) == 2:
            answer = self._read(frame[1])
        elif cmd == 0x3A and len(frame) == 3:
            answer = self._fast_read(frame[1], frame[2])
        elif cmd == 0xA2 and len(frame) == 6:
            answer = self._write(frame[1], frame[2:6])
        elif cmd == 0x60 and len(frame) == 1:
            answer = self.model.version
        elif cmd == 0x3C and len(frame) == 2:
            answer = self.signature if frame[1] == 0 else NAK
        elif cmd == 0x1B and len(frame) == 5:
            answer = self._pwd_auth(frame[1:5])
        elif cmd == 0x1A:
            answer = None  # no Ultralight C authentication: silence, then idle
            self._mute = True
        else:
            answer = NAK
        if answer == NAK:
            self._mute = True
        return answer

    @property
    def signature(self) -> bytes:
        """Stand-in for the originality signature: 32 bytes derived from the UID."""
        return hashlib.sha256(b"pos-loyalty simulated NTAG originality\x00" + self.uid).digest()

    # -- commands ---------------------------------------------------------------------------

    def _auth0(self) -> int:
        return self._mem[self.model.cfg_page * 4 + 3]

    def _read_protected(self, page: int) -> bool:
        prot = bool(self._mem[self.model.cfg_page * 4 + 4] & 0x80)
        return prot and page >= self._auth0() and not self._authenticated

    def _page_for_read(self, page: int) -> bytes:
        if page in (self.model.pwd_page, self.model.pack_page) or self._read_protected(page):
            return b"\x00\x00\x00\x00"
        return self.page(page)

    def _read(self, start: int) -> bytes:
        pages = self.model.pages
        if start >= pages or self._read_protected(start):
            return NAK
        self.reads += 1
        return b"".join(self._page_for_read((start + i) % pages) for i in range(4))

    def _fast_read(self, start: int, end: int) -> bytes:
        if start > end or end >= self.model.pages or self._read_protected(start):
            return NAK
        self.reads += 1
        return b"".join(self._page_for_read(p) for p in range(start, end + 1))

    def _pwd_auth(self, pwd: bytes) -> bytes:
        m = self.model
        if pwd != self.page(m.pwd_page):
            return NAK
        self._authenticated = True
        return self.page(m.pack_page)[0:2]

    def _locked(self, page: int) -> bool:
        m = self.model
        lock0, lock1 = self._mem[10], self._mem[11]
        if page == 3:
            return bool(lock0 & 0x08)
        if 4 <= page <= 7:
            return bool(lock0 & (0x10 << (page - 4)))
        if 8 <= page <= 15:
            return bool(lock1 & (1 << (page - 8)))
        if 16 <= page < m.dynlock_page:
            dyn = int.from_bytes(self._mem[m.dynlock_page * 4:m.dynlock_page * 4 + 2], "little")
            return bool(dyn & (1 << ((page - 16) // m.dynlock_pages_per_bit)))
        if page in (m.cfg_page, m.cfg_page + 1):
            return self.config_locked
        return False

    def _write(self, page: int, data: bytes) -> bytes:
        m = self.model
        if page < 2 or page >= m.pages or self._locked(page):
            return NAK
        if page >= self._auth0() and not self._authenticated:
            return NAK
        at = page * 4
        if page == 2:
            # only the lock bytes are writable, and lock bits never clear; block-lock bits
            # (LOCK0 bits 0-2) freeze the lock bits they cover
            lock0, lock1 = self._mem[10], self._mem[11]
            frozen0 = (0x08 if lock0 & 0x01 else 0) | (0xF0 if lock0 & 0x02 else 0)
            frozen1 = (0x03 if lock0 & 0x02 else 0) | (0xFC if lock0 & 0x04 else 0)
            self._mem[10] = lock0 | (data[2] & ~frozen0 & 0xFF)
            self._mem[11] = lock1 | (data[3] & ~frozen1 & 0xFF)
        elif page == 3 or page == m.dynlock_page:
            for i in range(4):  # one-time programmable / lock bits: OR
                self._mem[at + i] |= data[i]
            if page == m.dynlock_page:
                self._mem[at + 3] = 0  # RFUI
        else:
            self._mem[at:at + 4] = data
        return ACK
