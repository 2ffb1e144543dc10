"""docs/pos-protocol.md stays true: every byte example decodes as the text says."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

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


# -- section 6.4: the member binding transcript is what the terminal really answers -------

BINDING_STEPS: list[tuple[str, dict[str, Any] | str, str]] = [
    ("tap", "C-1001", "Ada taps: the till shows her"),
    ("till", {"type": "basket.update", "pos_id": "POS-1", "txn_id": "T-2001",
              "member_id": "M-1001", "lines": [{"sku": "BEANS", "qty": 1, "unit_price": 1000,
                                                "category": "retail"}]},
     "the sale is for the member on the till's screen"),
    ("tap", "C-1002", "Grace taps during the sale: the till shows her, the sale is unchanged"),
    ("till", {"type": "txn.commit", "pos_id": "POS-1", "txn_id": "T-2001"},
     "a till that commits without saying who ..."),
    ("till", {"type": "basket.update", "pos_id": "POS-1", "txn_id": "T-2001",
              "member_id": "M-1002", "lines": [{"sku": "BEANS", "qty": 1, "unit_price": 1000,
                                                "category": "retail"}]},
     "the cashier chose Grace: the basket again, naming her"),
    ("till", {"type": "txn.commit", "pos_id": "POS-1", "txn_id": "T-2001"},
     "the points go to Grace"),
    ("tap", "C-1001", "Ada taps after the commit: a new sale starts for her"),
    ("till", {"type": "basket.update", "pos_id": "POS-1", "txn_id": "T-2002",
              "member_id": "M-1001", "lines": [{"sku": "BEANS", "qty": 1, "unit_price": 1000,
                                                "category": "retail"}]}, "a new sale"),
    ("till", {"type": "redeem.request", "pos_id": "POS-1", "txn_id": "T-2002", "points": 100},
     "Ada redeems 100 points ..."),
    ("till", {"type": "redeem.request", "pos_id": "POS-1", "txn_id": "T-2002", "points": 0},
     "... and changes her mind: points 0 cancels the redemption"),
    ("till", {"type": "basket.update", "pos_id": "POS-1", "txn_id": "T-2002",
              "member_id": None, "lines": [{"sku": "BEANS", "qty": 1, "unit_price": 1000,
                                            "category": "retail"}]},
     "the member is taken off the sale: member_id null"),
]


def binding_transcript(workdir: Path) -> list[str]:
    """The section 6.4 example, made by a real TerminalService and framed by the codec
    (ACKs left out). ``python -m tests.pos.test_pos_docs`` prints it for the doc."""
    from datetime import datetime

    from pos_loyalty.nfc.events import TapEvent
    from pos_loyalty.pos.codec import encode_frame
    from pos_loyalty.pos.messages import Message, Role, encode_message, message_from_dict
    from pos_loyalty.rules import load_program
    from pos_loyalty.store import LocalStore
    from pos_loyalty.terminal.demo_data import seed_demo_members
    from pos_loyalty.terminal.service import TerminalService

    store = LocalStore(f"sqlite:///{workdir / 'doc.db'}")
    seed_demo_members(store)
    program = load_program(DOC.parents[1] / "examples" / "programs" / "cafe.toml")
    service = TerminalService(store, program, clock=lambda: datetime(2026, 3, 2, 9, 30))
    seq = {"T->M": 0, "M->T": 0}
    out: list[str] = []

    def frame(direction: str, msg: Message | None, note: str) -> None:
        assert msg is not None
        sender: Role = "till" if direction == "T->M" else "terminal"
        wire = encode_frame(Frame("D", seq[direction], encode_message(msg, sender)))
        seq[direction] = (seq[direction] + 1) % 256
        text = wire.decode().replace("\x02", "<STX>").replace("\x03", "<ETX>")
        out.append(f"{direction}  {text}")
        if note:
            out.append(f"      # {note}")

    try:
        for kind, what, note in BINDING_STEPS:
            if kind == "tap":
                assert isinstance(what, str)
                frame("M->T", service.on_tap(TapEvent("member", "04A1B2C3D4E5F6", "NTAG213",
                                                      card_id=what, verified=True)), note)
            else:
                assert isinstance(what, dict)
                request = message_from_dict(what, "till", remote=False)
                frame("T->M", request, note)
                frame("M->T", service.on_message(request), "")
    finally:
        store.close()
    return out


class TestBindingExample:
    def test_section_6_4_is_what_the_terminal_answers(self, tmp_path: Path) -> None:
        """The binding transcript in the spec is replayed through a real terminal service:
        every frame, CRC and answer is what the implementation produces."""
        want = binding_transcript(tmp_path)
        start = TEXT.index(want[0])
        got = TEXT[start:].splitlines()[:len(want)]
        assert got == want


# -- section 6.5: product tags and coupons, through a live central -------------------------

COUPON = "7KQ2M4X9TB"
BEANS = [{"sku": "BEANS", "qty": 1, "unit_price": 1000, "category": "retail"}]
PHONE_STEPS: list[tuple[str, dict[str, Any] | str, str]] = [
    ("product", "04C0FFEE000001", "a product tag tapped with no member's sale open: not linked"),
    ("tap", "C-1001", "Ada taps"),
    ("till", {"type": "basket.update", "pos_id": "POS-1", "txn_id": "T-3001",
              "member_id": "M-1001", "lines": BEANS}, "her sale"),
    ("product", "04C0FFEE000001", "the product's tag tapped: the item is now Ada's"),
    ("till", {"type": "coupon.present", "pos_id": "POS-1", "txn_id": "T-3001",
              "code": COUPON}, "she shows the reorder coupon from the product's page"),
    ("till", {"type": "txn.commit", "pos_id": "POS-1", "txn_id": "T-3001"}, ""),
    ("till", {"type": "basket.update", "pos_id": "POS-1", "txn_id": "T-3002",
              "member_id": None, "lines": BEANS}, "another sale"),
    ("till", {"type": "coupon.present", "pos_id": "POS-1", "txn_id": "T-3002",
              "code": COUPON}, "the same code again: refused (at another till: "
                               "'coupon ... refused: coupon already used')"),
]


class Transcript:
    """Frames as the codec makes them, numbered per direction, for the spec."""

    def __init__(self) -> None:
        self.seq = {"T->M": 0, "M->T": 0}
        self.lines: list[str] = []

    def frame(self, direction: str, msg: Any, note: str) -> None:
        from pos_loyalty.pos.codec import encode_frame
        from pos_loyalty.pos.messages import Role, encode_message

        assert msg is not None
        sender: Role = "till" if direction == "T->M" else "terminal"
        wire = encode_frame(Frame("D", self.seq[direction], encode_message(msg, sender)))
        self.seq[direction] = (self.seq[direction] + 1) % 256
        self.lines.append(f"{direction}  " + wire.decode().replace("\x02", "<STX>")
                          .replace("\x03", "<ETX>"))
        if note:
            self.lines.append(f"      # {note}")


def phone_transcript(workdir: Path) -> list[str]:
    """The section 6.5 example: a real TerminalService enrolled with a live central (its
    coupon made with a fixed code), framed by the codec. Printed by ``python -m
    tests.pos.test_pos_docs``."""
    from datetime import datetime

    from pos_loyalty.migrations import upgrade_central, upgrade_terminal
    from pos_loyalty.nfc.events import TapEvent
    from pos_loyalty.pos.messages import message_from_dict
    from pos_loyalty.rules import load_program
    from pos_loyalty.server.app import create_app
    from pos_loyalty.server.central import CentralStore
    from pos_loyalty.server.config import PhoneConfig, Settings
    from pos_loyalty.server.runner import ServerThread
    from pos_loyalty.store import LocalStore
    from pos_loyalty.store.central_models import PhoneCoupon
    from pos_loyalty.sync.client import SyncClient
    from pos_loyalty.terminal.demo_data import seed_demo_members
    from pos_loyalty.terminal.service import TerminalService

    central_url = f"sqlite:///{workdir / 'central.db'}"
    upgrade_central(central_url)
    central = CentralStore(central_url)
    central.write(lambda conn: conn.execute(central.insert(PhoneCoupon).values(
        code=COUPON, uid="04C0FFEE000001", sku="BEANS", percent=10,
        issued_at=datetime(2026, 3, 1), expires_at=datetime(2099, 1, 1), redeemed_at=None,
        redeemed_by=None, redeemed_txn=None)))
    _tid, code = central.add_terminal("S-1")
    app = create_app(Settings(db_url=central_url, phone=PhoneConfig()), store=central,
                     migrate=False)
    local_url = f"sqlite:///{workdir / 'doc.db'}"
    upgrade_terminal(local_url)
    store = LocalStore(local_url)
    seed_demo_members(store)
    program = load_program(DOC.parents[1] / "examples" / "programs" / "cafe.toml")
    out = Transcript()
    try:
        with ServerThread(app) as srv:
            with SyncClient(srv.url) as anon:
                answer = anon.enroll(code)
            store.set_enrollment(server_url=srv.url, terminal_id=answer["terminal_id"],
                                 store_id="S-1", credential=answer["credential"])
            service = TerminalService(store, program,
                                      clock=lambda: datetime(2026, 3, 2, 9, 30))
            try:
                for kind, what, note in PHONE_STEPS:
                    if kind == "tap":
                        assert isinstance(what, str)
                        out.frame("M->T", service.on_tap(TapEvent(
                            "member", "04A1B2C3D4E5F6", "NTAG213", card_id=what,
                            verified=True)), note)
                    elif kind == "product":
                        assert isinstance(what, str)
                        out.frame("M->T", service.on_tap(TapEvent(
                            "product", what, "Type4ATag", verified=True, product={
                                "sku": "BEANS", "url": "https://shop.example/p/BEANS?..."})),
                            note)
                    else:
                        assert isinstance(what, dict)
                        request = message_from_dict(what, "till", remote=False)
                        out.frame("T->M", request, note)
                        out.frame("M->T", service.on_message(request), "")
            finally:
                service.coupons.close()
    finally:
        store.close()
        central.close()
    return out.lines


class TestPhoneExample:
    def test_section_6_5_is_what_the_terminal_answers(self, tmp_path: Path) -> None:
        """The product tag and coupon transcript in the spec is replayed through a real
        terminal service and a live central: every frame is what they produce."""
        want = phone_transcript(tmp_path)
        start = TEXT.index(want[0])
        got = TEXT[start:].splitlines()[:len(want)]
        assert got == want


if __name__ == "__main__":  # regenerate the section 6.4 and 6.5 examples
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print("\n".join(binding_transcript(Path(tmp))))
        print()
        print("\n".join(phone_transcript(Path(tmp))))
