"""The frame codec: CRC, encoding, incremental decoding, resynchronisation, bounds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pos_loyalty.errors import LocalProtocolError, RemoteProtocolError
from pos_loyalty.pos.codec import (
    ETX,
    MAX_PAYLOAD,
    NEED_DATA,
    OVERHEAD,
    STX,
    Frame,
    FrameDecoder,
    FrameError,
    crc16_ccitt_false,
    encode_frame,
)

Outcome = list[Frame | str]


def drain(dec: FrameDecoder) -> Outcome:
    """Pull every event; errors become their reason string. Fails on a hang."""
    out: Outcome = []
    for _ in range(10_000):
        try:
            ev = dec.next_event()
        except FrameError as err:
            out.append(err.reason)
            continue
        if ev is NEED_DATA:
            return out
        out.append(ev)
    raise AssertionError("decoder did not settle")


def feed(data: bytes, *, chunk: int | None = None, max_payload: int = MAX_PAYLOAD) -> Outcome:
    dec = FrameDecoder(max_payload=max_payload)
    out: Outcome = []
    step = chunk or max(1, len(data))
    for i in range(0, len(data), step):
        dec.receive_data(data[i:i + step])
        out += drain(dec)
        assert dec.buffered <= max_payload + OVERHEAD
    return out


def frames_of(out: Outcome) -> list[Frame]:
    return [x for x in out if isinstance(x, Frame)]


PAYLOAD_CHARS = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
payloads = st.text(PAYLOAD_CHARS, max_size=300).map(str.encode)
frames = st.builds(Frame, kind=st.sampled_from("HDANP"), seq=st.integers(0, 255),
                   payload=payloads, version=st.integers(0, 9))

SAMPLES = [
    Frame("D", 0, b'{"type":"txn.commit","pos_id":"P1","txn_id":"T1"}'),
    Frame("A", 0x7F),
    Frame("N", 0xFF, b'{"reason":"bad CRC"}'),
    Frame("P", 0x10),
    Frame("H", 0, b'{"versions":[1],"max_payload":2048,"role":"till","id":"POS-1"}'),
]


class TestCrc:
    def test_check_value(self) -> None:
        """The CRC-16/CCITT-FALSE check value of "123456789" is 0x29B1."""
        assert crc16_ccitt_false(b"123456789") == 0x29B1

    def test_empty_is_init(self) -> None:
        """The CRC of nothing is the initial value 0xFFFF (no final xor)."""
        assert crc16_ccitt_false(b"") == 0xFFFF

    @given(st.binary(max_size=64), st.integers(0, 63), st.integers(1, 255))
    def test_detects_any_single_byte_error(self, data: bytes, pos: int, xor: int) -> None:
        """Changing any one byte always changes the CRC."""
        if not data:
            return
        pos %= len(data)
        bad = bytearray(data)
        bad[pos] ^= xor
        assert crc16_ccitt_false(bytes(bad)) != crc16_ccitt_false(data)


class TestEncode:
    def test_known_bytes(self) -> None:
        """An ACK for sequence 7F encodes to the documented bytes."""
        body = b"A1" + b"7F" + b"0000"
        assert encode_frame(Frame("A", 0x7F)) == (
            b"\x02" + body + b"%04X" % crc16_ccitt_false(body) + b"\x03")

    def test_payload_too_long(self) -> None:
        """A payload beyond the maximum is refused with LocalProtocolError."""
        with pytest.raises(LocalProtocolError, match="exceeds"):
            encode_frame(Frame("D", 0, b"x" * 65), max_payload=64)

    @pytest.mark.parametrize(("kwargs", "match"), [
        ({"kind": "X", "seq": 0}, "kind"),
        ({"kind": "D", "seq": 256}, "sequence"),
        ({"kind": "D", "seq": -1}, "sequence"),
        ({"kind": "D", "seq": 0, "version": 10}, "version"),
        ({"kind": "D", "seq": 0, "payload": b"a\x03b"}, "control"),
        ({"kind": "D", "seq": 0, "payload": b"a\nb"}, "control"),
    ])
    def test_invalid_frames_refused(self, kwargs: dict[str, object], match: str) -> None:
        """A frame that could not be sent correctly cannot even be built."""
        with pytest.raises(LocalProtocolError, match=match):
            Frame(**kwargs)  # type: ignore[arg-type]


class TestDecode:
    @given(frames)
    def test_round_trip(self, frame: Frame) -> None:
        """Every frame decodes back to itself."""
        assert feed(encode_frame(frame)) == [frame]

    @pytest.mark.parametrize("frame", SAMPLES)
    @pytest.mark.parametrize("mode", ["whole", "bytewise", "trailing"])
    def test_samples_every_way(self, frame: Frame, mode: str) -> None:
        """Each sample decodes fed whole, one byte at a time, and followed by a partial frame."""
        wire = encode_frame(frame)
        if mode == "whole":
            assert feed(wire) == [frame]
        elif mode == "bytewise":
            assert feed(wire, chunk=1) == [frame]
        else:
            dec = FrameDecoder()
            dec.receive_data(wire + wire[:7])
            assert drain(dec) == [frame]
            assert dec.in_frame and dec.buffered == 7
            dec.receive_data(wire[7:])
            assert drain(dec) == [frame]

    @given(st.lists(frames, max_size=6), st.integers(1, 50))
    def test_stream_any_chunking(self, fs: list[Frame], chunk: int) -> None:
        """A stream of frames decodes the same however the bytes are split."""
        wire = b"".join(encode_frame(f) for f in fs)
        assert feed(wire, chunk=chunk) == fs

    @given(st.binary(max_size=3000), st.integers(1, 512))
    @settings(max_examples=300)
    def test_any_bytes_give_frames_or_errors(self, data: bytes, chunk: int) -> None:
        """Arbitrary bytes yield frames or FrameError only, never hang, and stay bounded."""
        out = feed(data, chunk=chunk)
        assert len(out) <= len(data)

    @given(st.binary(max_size=200), frames, st.integers(1, 64))
    @settings(max_examples=300)
    def test_clean_frame_after_any_noise(self, noise: bytes, frame: Frame, chunk: int) -> None:
        """Whatever bytes came before, the next clean frame is decoded (resync at STX)."""
        out = feed(noise + encode_frame(frame), chunk=chunk)
        assert out[-1] == frame


class TestDamage:
    @given(st.sampled_from(SAMPLES), st.data())
    @settings(max_examples=400)
    def test_single_byte_corruption_detected(self, frame: Frame, data: st.DataObject) -> None:
        """Any one corrupted byte gives an error, never a wrong frame, and the next frame
        is still decoded."""
        wire = bytearray(encode_frame(frame))
        pos = data.draw(st.integers(0, len(wire) - 1))
        wire[pos] ^= data.draw(st.integers(1, 255))
        good = Frame("D", 9, b'{"type":"txn.void","pos_id":"P","txn_id":"T"}')
        out = feed(bytes(wire) + encode_frame(good), chunk=data.draw(st.integers(1, 40)))
        assert frames_of(out) == [good]
        assert any(isinstance(x, str) for x in out)

    def test_bad_crc_reports_kind_and_seq(self) -> None:
        """A CRC error names the frame's kind and sequence so the NAK can carry it."""
        wire = bytearray(encode_frame(Frame("D", 0x42, b"{}")))
        wire[-2] = ord("0") if wire[-2] != ord("0") else ord("1")
        dec = FrameDecoder()
        dec.receive_data(bytes(wire))
        with pytest.raises(FrameError, match="bad CRC") as info:
            dec.next_event()
        assert (info.value.kind, info.value.seq) == ("D", 0x42)
        assert isinstance(info.value, RemoteProtocolError)
        assert dec.next_event() is NEED_DATA

    def test_truncated_frame_resyncs_at_next_stx(self) -> None:
        """A frame cut short by the next STX is reported and the next frame decoded."""
        a, b = encode_frame(SAMPLES[0]), encode_frame(SAMPLES[1])
        out = feed(a[:20] + b)
        assert out == ["frame truncated (STX or ETX inside the payload)", SAMPLES[1]]

    @pytest.mark.parametrize("at", [1, 2, 3, 4])
    def test_etx_inside_the_crc_is_truncation(self, at: int) -> None:
        """An ETX (or STX) among the CRC digits means the frame was cut short (3.5):
        NAK code truncated, not header."""
        wire = encode_frame(SAMPLES[0])
        cut = len(wire) - 1 - at  # the position of one of the four CRC digits
        for byte in (b"\x03", b"\x02"):
            dec = FrameDecoder()
            dec.receive_data(wire[:cut] + byte)
            with pytest.raises(FrameError) as info:
                dec.next_event()
            assert info.value.code == "truncated", info.value.reason

    def test_oversized_frame_rejected_without_buffering(self) -> None:
        """A length above the maximum is refused at the header and its body skipped."""
        big = encode_frame(Frame("D", 1, b"x" * 300))
        ok = encode_frame(SAMPLES[3])
        dec = FrameDecoder(max_payload=256)
        dec.receive_data(big[:9])
        with pytest.raises(FrameError, match="exceeds"):
            dec.next_event()
        dec.receive_data(big[9:] + ok)
        assert drain(dec) == [SAMPLES[3]]
        assert dec.buffered == 0

    def test_lost_stx_reported_at_etx(self) -> None:
        """A frame whose STX was lost is reported when its ETX arrives, with its seq."""
        wire = encode_frame(Frame("D", 0x33, b"{}"))
        dec = FrameDecoder()
        dec.receive_data(wire[1:])
        with pytest.raises(FrameError, match="STX") as info:
            dec.next_event()
        assert (info.value.kind, info.value.seq) == ("D", 0x33)

    def test_control_byte_in_payload(self) -> None:
        """A raw control byte inside the payload is an error (JSON would have escaped it)."""
        body = b"D1000003a\nb"
        wire = b"\x02" + body + b"%04X" % crc16_ccitt_false(body) + b"\x03"
        assert feed(wire)[0] == "control byte 0x0A inside the payload"

    def test_lowercase_hex_refused(self) -> None:
        """Header hex digits must be upper-case."""
        body = b"D10a0000"
        wire = b"\x02" + body + b"%04X" % crc16_ccitt_false(body) + b"\x03"
        assert "upper-case" in str(feed(wire)[0])

    def test_noise_never_grows_buffer(self) -> None:
        """Megabytes of noise without STX leave the buffer empty."""
        dec = FrameDecoder()
        for _ in range(200):
            dec.receive_data(b"\x55" * 8192)
            assert drain(dec) == []
            assert dec.buffered == 0
        assert dec.noise_bytes == 200 * 8192

    def test_endless_payload_is_bounded(self) -> None:
        """A header announcing the maximum length followed by endless bytes ends in an error."""
        dec = FrameDecoder()
        dec.receive_data(b"\x02D100%04X" % MAX_PAYLOAD)
        seen: Outcome = []
        for _ in range(10):
            dec.receive_data(b"7" * 1000)
            seen += drain(dec)
            assert dec.buffered <= MAX_PAYLOAD + OVERHEAD
        assert seen and all(isinstance(x, str) for x in seen)

    def test_abort_partial(self) -> None:
        """Dropping a partial frame (inter-byte gap) reports it and keeps a later STX."""
        dec = FrameDecoder()
        wire = encode_frame(SAMPLES[0])
        dec.receive_data(wire[:12])
        assert drain(dec) == []
        err = dec.abort_partial()
        assert err is not None and err.seq == 0 and not dec.in_frame
        assert dec.abort_partial() is None
        dec.receive_data(wire)
        assert drain(dec) == [SAMPLES[0]]

    def test_undrained_feed_refused(self) -> None:
        """Feeding without draining beyond max_buffer is a LocalProtocolError, not growth."""
        dec = FrameDecoder(max_buffer=4096)
        dec.receive_data(b"\x00" * 4000)
        with pytest.raises(LocalProtocolError, match="buffer full"):
            dec.receive_data(b"\x00" * 200)

    def test_stx_etx_constants(self) -> None:
        """STX and ETX are the ASCII control codes 0x02 and 0x03."""
        assert (STX, ETX) == (2, 3)
