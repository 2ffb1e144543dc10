"""libFuzzer target (atheris) for the serial frame decoder, the link and the message parser.

Run it by hand for as long as you like::

    python tests/pos/fuzz_serial_decoder.py -max_total_time=600 [CORPUS_DIR]

CI runs it for a fixed number of inputs (tests/pos/test_pos_fuzz.py). Any exception other
than our own protocol errors, or a broken invariant, is a crash.
"""

from __future__ import annotations

import contextlib
import sys

import atheris

with atheris.instrument_imports():
    from pos_loyalty.errors import RemoteProtocolError
    from pos_loyalty.pos.codec import NEED_DATA, OVERHEAD, FrameDecoder, FrameError
    from pos_loyalty.pos.link import Link
    from pos_loyalty.pos.messages import decode_message

MAX_PAYLOAD = 256


def check_output(data: bytes) -> None:
    """Whatever came in, what the link writes must be clean frames."""
    dec = FrameDecoder()
    dec.receive_data(data)
    while dec.next_event() is not NEED_DATA:
        pass


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    chunk = fdp.ConsumeIntInRange(1, 64)
    stream = fdp.ConsumeBytes(fdp.remaining_bytes())
    dec = FrameDecoder(max_payload=MAX_PAYLOAD)
    for i in range(0, len(stream), chunk):
        dec.receive_data(stream[i:i + chunk])
        while True:
            try:
                ev = dec.next_event()
            except FrameError:
                continue
            if ev is NEED_DATA:
                break
            for side in ("till", "terminal"):
                with contextlib.suppress(RemoteProtocolError):
                    decode_message(ev.payload, side)
        if dec.buffered > MAX_PAYLOAD + OVERHEAD:
            raise AssertionError(f"decoder holds {dec.buffered} bytes")
    link = Link("terminal")
    link.connect(0.0)
    now = 0.0
    for i in range(0, len(stream), chunk):
        now += 0.05
        link.receive_data(stream[i:i + chunk], now)
        link.tick(now)
        check_output(link.data_to_send())


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
