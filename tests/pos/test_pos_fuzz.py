"""Bounded fuzzing of everything that parses bytes from the till: decoder, link, messages.

Two fuzzers, both with a fixed budget so CI time stays bounded: a hypothesis fuzzer that
mutates valid traffic (always runs), and the atheris/libFuzzer target
``tests/pos/fuzz_serial_decoder.py`` for a fixed number of inputs (where atheris installs:
Linux x86-64).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pos_loyalty.errors import RemoteProtocolError
from pos_loyalty.pos.codec import NEED_DATA, OVERHEAD, Frame, FrameDecoder, encode_frame
from pos_loyalty.pos.link import Hello, Link, Message
from pos_loyalty.pos.messages import decode_message

ROOT = Path(__file__).parents[2]

SEEDS = [
    encode_frame(Frame("H", 0, Hello((1,), 2048, "till", "POS-1").to_payload())),
    encode_frame(Frame("D", 0, b'{"type":"basket.update","pos_id":"P","txn_id":"T","lines":'
                                b'[{"sku":"A","qty":1,"unit_price":100,"category":"c"}]}')),
    encode_frame(Frame("D", 1, b'{"type":"txn.commit","pos_id":"P","txn_id":"T"}')),
    encode_frame(Frame("A", 0)),
    encode_frame(Frame("N", 3, b'{"reason":"bad CRC"}')),
    encode_frame(Frame("P", 0xFF)),
]


@st.composite
def mutated_traffic(draw: st.DrawFn) -> bytes:
    """Valid frames in random order with flips, insertions, deletions and cuts."""
    data = bytearray(b"".join(draw(st.lists(st.sampled_from(SEEDS), min_size=1, max_size=6))))
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "cut", "dup"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] ^= draw(st.integers(1, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and data:
            del data[pos:pos + draw(st.integers(1, 8))]
        elif op == "cut":
            del data[pos:]
        elif op == "dup":
            data[pos:pos] = data[pos:pos + draw(st.integers(1, 40))]
    return bytes(data)


def assert_clean_frames(data: bytes) -> None:
    """Whatever the link was fed, what it writes back decodes as valid frames."""
    dec = FrameDecoder()
    dec.receive_data(data)
    while dec.next_event() is not NEED_DATA:
        pass


class TestHypothesisFuzz:
    @given(mutated_traffic() | st.binary(max_size=400), st.integers(1, 64),
           st.sampled_from(["terminal", "till"]))
    @settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    def test_link_survives_any_input(self, data: bytes, chunk: int, role: str) -> None:
        """Fed any bytes, the link raises nothing, stays bounded and only writes valid frames;
        every delivered payload parses to a message or a RemoteProtocolError."""
        link = Link(role, max_payload=256)  # type: ignore[arg-type]
        link.connect(0.0)
        now = 0.0
        peer = "till" if role == "terminal" else "terminal"
        for i in range(0, len(data), chunk):
            now += 0.07
            link.receive_data(data[i:i + chunk], now)
            link.tick(now)
            assert_clean_frames(link.data_to_send())
            assert link.buffered <= 256 + OVERHEAD
            while (ev := link.next_event()) is not NEED_DATA:
                if isinstance(ev, Message):
                    try:
                        decode_message(ev.payload, peer)  # type: ignore[arg-type]
                    except RemoteProtocolError as exc:
                        assert exc.reason


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None,
                    reason="atheris has no wheel for this platform")
class TestAtheris:
    def test_libfuzzer_bounded_run(self, tmp_path: Path) -> None:
        """The libFuzzer target runs a fixed number of inputs from valid seeds without a crash."""
        corpus = tmp_path / "corpus"
        corpus.mkdir()
        for i, seed in enumerate(SEEDS):
            (corpus / f"seed{i}").write_bytes(b"\x07" + seed)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run(
            [sys.executable, str(ROOT / "tests/pos/fuzz_serial_decoder.py"), "-runs=3000",
             "-max_len=512", "-seed=1", f"-artifact_prefix={tmp_path}/", str(corpus)],
            env=env, capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "Done 3000 runs" in proc.stderr
