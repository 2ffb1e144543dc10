"""The POS serial link: frame codec, link state machine, messages, pyserial transport.

``codec`` and ``link`` are pure (bytes and ``now`` in, events and bytes out); ``transport`` is
the thin pyserial edge; ``pty`` and ``till`` are the simulated wire and the reference till.
docs/pos-protocol.md is the normative description of the protocol.
"""
