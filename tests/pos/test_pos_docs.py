"""docs/pos-protocol.md stays true: every byte example decodes as the text says."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pos_loyalty.pos.codec import NAK_CODES, NEED_DATA, Frame, FrameDecoder, FrameError
from pos_loyalty.pos.link import LINK_NAK_CODES, Hello
from pos_loyalty.pos.messages import TERMINAL_MESSAGES, TILL_MESSAGES, decode_message

DOC = Path(__file__).parents[2] / "docs" / "pos-protocol.md"
TEXT = DOC.read_text(encoding="utf-8")
EXAMPLE = re.compile(r"^(?:(T->M|M->T)\s+)?(<STX>.*?<ETX>)(.*)$")


def examples() -> list[tuple[str | None, bytes, str]]:
    out = []
    lines = TEXT.splitlines()
    for i, line in enumerate(lines):
        m = EXAMPLE.match(line.strip())
        if m:
            wire = m.group(2).replace("<STX>", "\x02").replace("<ETX>", "\x03").encode()
            note = m.group(3) + (lines[i + 1] if i + 1 < len(lines) else "")
            out.append((m.group(1), wire, note))
    return out


def decode(wire: bytes) -> Frame:
    dec = FrameDecoder()
    dec.receive_data(wire)
    frame = dec.next_event()
    assert frame is not NEED_DATA
    assert dec.next_event() is NEED_DATA
    return frame


class TestDocExamples:
    def test_there_are_examples_of_every_kind(self) -> None:
        """The spec shows at least one real frame of each of the five kinds."""
        kinds = {decode(w).kind for _, w, note in examples() if "damaged" not in note}
        assert kinds == set("HDANP")

    @pytest.mark.parametrize(("direction", "wire", "note"), examples())
    def test_example_is_valid(self, direction: str | None, wire: bytes, note: str) -> None:
        """Each example frame has a correct CRC and a payload valid for its sender; the one
        marked damaged is rejected."""
        if "damaged" in note:
            with pytest.raises(FrameError):
                decode(wire)
            return
        frame = decode(wire)
        if frame.kind == "D" and direction is not None:
            decode_message(frame.payload, "till" if direction == "T->M" else "terminal")
        elif frame.kind == "H":
            Hello.from_payload(frame.payload)
        elif frame.kind == "N":
            assert json.loads(frame.payload)["code"] in NAK_CODES | LINK_NAK_CODES

    def test_hex_dump_matches(self) -> None:
        """The byte-by-byte dump of the commit frame is the frame's real encoding."""
        frame = decode(b'\x02D12A0038{"type":"txn.commit","pos_id":"POS-1","txn_id":"T-1001"}'
                       b"A179\x03")
        assert frame.seq == 0x2A and len(frame.payload) == 0x38

    def test_every_code_and_message_documented(self) -> None:
        """Every NAK code and message type of the implementation appears in the spec."""
        for code in NAK_CODES | LINK_NAK_CODES:
            assert f"| `{code}` |" in TEXT
        for mtype in set(TERMINAL_MESSAGES) | set(TILL_MESSAGES):
            assert f"| `{mtype}` |" in TEXT
