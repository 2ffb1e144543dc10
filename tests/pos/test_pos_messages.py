"""Typed messages: every message round-trips through a frame; bad ones get a clear reason."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pos_loyalty.errors import LocalProtocolError, RemoteProtocolError
from pos_loyalty.pos.codec import NEED_DATA, Frame, FrameDecoder, encode_frame
from pos_loyalty.pos.messages import (
    REPLIES,
    TERMINAL_MESSAGES,
    TILL_MESSAGES,
    UNSET,
    BasketItem,
    BasketUpdate,
    PointsAwarded,
    Role,
    TxnCommit,
    _Record,
    decode_message,
    encode_message,
    message_from_dict,
)

ident = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1,
                max_size=64)
text = st.text(max_size=80)
money = st.integers(-10**9, 10**9)
count = st.integers(1, 10**6)
qty = st.integers(1, 10_000)
opt_ident = st.none() | ident
txn = {"pos_id": ident, "txn_id": ident}


def msg(mtype: str, **fields: st.SearchStrategy[Any]
        ) -> tuple[str, st.SearchStrategy[dict[str, Any]]]:
    return mtype, st.fixed_dictionaries({"type": st.just(mtype), **fields})


TERMINAL = dict([
    msg("member.identified", card_id=ident, member_id=ident, name=text,
        tier=st.none() | st.text(max_size=64), balance=money, discounts=st.lists(text, max_size=5),
        tap_ms=st.floats(0, 1e6) | st.integers(0, 10**6)),
    msg("member.unknown", card_id=st.text(max_size=64), reason=text),
    msg("card.refused", uid=st.text(max_size=64), reason=st.text(min_size=1, max_size=80)),
    msg("quote", **txn, member_id=opt_ident, lines=st.lists(st.fixed_dictionaries({
        "program": text, "kind": st.sampled_from(["discount", "points", "redeem"]),
        "value": money, "text": text}), max_size=5),
        discount_total=money, points_total=money, total_due=money, summary=text),
    ("points.awarded", st.fixed_dictionaries(
        {"type": st.just("points.awarded"), **txn, "member_id": opt_ident, "points": money,
         "balance_before": st.none() | money, "balance_after": st.none() | money,
         "repeated": st.booleans()},
        optional={"visit_url": st.from_regex(r"https://[a-z.]{1,30}/v/[0-9a-f]{32}",
                                             fullmatch=True)})),
    msg("product.tapped", uid=ident, sku=ident, linked=st.booleans(), member_id=opt_ident,
        pos_id=opt_ident, txn_id=opt_ident, text=st.text(min_size=1, max_size=80)),
    msg("txn.status", **txn,
        state=st.sampled_from(["unknown", "open", "committed", "voided", "refunded"]),
        points=money, balance_after=st.none() | money),
    msg("error", code=st.text(min_size=1, max_size=64), message=text),
])
TILL = dict([
    msg("basket.update", **txn, lines=st.lists(st.fixed_dictionaries({
        "sku": ident, "qty": qty, "unit_price": st.integers(0, 10**9),
        "category": st.text(max_size=64)}), max_size=5)),
    msg("basket.update", **txn, member_id=opt_ident, lines=st.just([])),
    msg("redeem.request", **txn, points=st.integers(0, 10**9)),
    msg("coupon.present", **txn, code=st.from_regex(r"[2-9A-Z]{10}", fullmatch=True)),
    msg("txn.commit", **txn),
    msg("txn.void", **txn),
    msg("refund", **txn, refund_id=ident, lines=st.lists(
        st.fixed_dictionaries({"sku": ident, "qty": qty}), min_size=1, max_size=5)),
    msg("txn.status", **txn),
    msg("error", code=st.text(min_size=1, max_size=64), message=text, pos_id=ident),
])


def through_frame(payload: bytes) -> bytes:
    dec = FrameDecoder()
    dec.receive_data(encode_frame(Frame("D", 1, payload)))
    frame = dec.next_event()
    assert frame is not NEED_DATA
    return frame.payload


class TestRoundTrip:
    def test_every_type_has_a_strategy(self) -> None:
        """The round-trip tests below cover every message type of both sides."""
        assert set(TERMINAL) == set(TERMINAL_MESSAGES)
        assert set(TILL) == set(TILL_MESSAGES)

    @given(st.one_of(*TERMINAL.values()))
    @settings(max_examples=300)
    def test_terminal_messages(self, doc: dict[str, Any]) -> None:
        """Every valid terminal message survives class -> encode -> frame -> decode."""
        message = message_from_dict(doc, "terminal", remote=False)
        payload = encode_message(message, "terminal")
        assert payload.isascii()
        decoded = decode_message(through_frame(payload), "terminal")
        assert decoded == message and type(decoded) is type(message)
        assert decoded.to_dict() == doc

    @given(st.one_of(*TILL.values()))
    @settings(max_examples=300)
    def test_till_messages(self, doc: dict[str, Any]) -> None:
        """Every valid till message survives class -> encode -> frame -> decode."""
        message = message_from_dict(doc, "till", remote=False)
        decoded = decode_message(through_frame(encode_message(message, "till")), "till")
        assert decoded == message and decoded.to_dict() == doc

    def test_extra_fields_are_ignored(self) -> None:
        """Unknown extra fields are accepted and dropped (forward compatibility)."""
        got = decode_message(b'{"type":"txn.commit","pos_id":"P","txn_id":"T","cashier":"7"}',
                             "till")
        assert got == TxnCommit("P", "T")

    def test_member_binding_left_out_null_or_named(self) -> None:
        """basket.update tells apart a member_id left out, null, and a member."""
        base = b'{"type":"basket.update","pos_id":"P","txn_id":"T","lines":[]'
        out = decode_message(base + b"}", "till")
        null = decode_message(base + b',"member_id":null}', "till")
        named = decode_message(base + b',"member_id":"M-1"}', "till")
        assert isinstance(out, BasketUpdate) and out.member_id is UNSET
        assert isinstance(null, BasketUpdate) and null.member_id is None
        assert isinstance(named, BasketUpdate) and named.member_id == "M-1"
        assert b"member_id" not in encode_message(out, "till")
        assert b'"member_id":null' in encode_message(null, "till")

    def test_every_field_has_a_check(self) -> None:
        """Each message class checks every one of its fields (none slips through)."""
        from dataclasses import fields

        classes: set[type[_Record]] = {*TERMINAL_MESSAGES.values(), *TILL_MESSAGES.values(),
                                       BasketItem}
        for cls in classes:
            assert set(cls.CHECKS) == {f.name for f in fields(cls)}, cls  # type: ignore[arg-type]

    def test_every_request_has_replies(self) -> None:
        """Each till request names the terminal messages that may answer it."""
        for request, replies in REPLIES.items():
            assert request in TILL_MESSAGES
            assert replies <= set(TERMINAL_MESSAGES)


class TestInvalid:
    @pytest.mark.parametrize(("payload", "reason"), [
        (b"{", "not JSON"),
        (b"\xff", "not UTF-8"),
        (b"[1]", "JSON object"),
        (b'{"pos_id":"P"}', "field 'type' is missing"),
        (b'{"type":"txn.teleport"}', "unknown message type 'txn.teleport' from the till"),
        (b'{"type":"quote","pos_id":"P","txn_id":"T"}', "unknown message type 'quote'"),
        (b'{"type":"txn.commit","pos_id":"P"}', "txn.commit: field 'txn_id' is missing"),
        (b'{"type":"txn.commit","pos_id":"","txn_id":"T"}', "'pos_id' must not be empty"),
        (b'{"type":"txn.commit","pos_id":7,"txn_id":"T"}', "'pos_id' must be a string, not int"),
        (b'{"type":"redeem.request","pos_id":"P","txn_id":"T","points":true}',
         "'points' must be an integer, not bool"),
        (b'{"type":"redeem.request","pos_id":"P","txn_id":"T","points":-1}',
         "'points' must be at least 0"),
        (b'{"type":"basket.update","pos_id":"P","txn_id":"T","lines":[{"sku":"A","qty":1,'
         b'"unit_price":10000000000000000000,"category":"x"}]}',
         "'lines[0].unit_price' must be at most 1000000000"),
        (b'{"type":"basket.update","pos_id":"P","txn_id":"T","lines":[{"sku":"A",'
         b'"qty":10001,"unit_price":1,"category":"x"}]}', "'lines[0].qty' must be at most"),
        (b'{"type":"basket.update","pos_id":"P","txn_id":"T","member_id":"","lines":[]}',
         "'member_id' must not be empty"),
        (b'{"type":"txn.status","pos_id":"P","txn_id":"T","x":' + b"[" * 1020 + b"]" * 1020
         + b"}", "nested deeper than 8 levels"),
        (b"[" * 1020, "nested deeper than 8 levels"),
        (b'{"type":"basket.update","pos_id":"P","txn_id":"T","lines":[{"sku":"A","qty":1,'
         b'"unit_price":1.5,"category":"x"}]}', "'lines[0].unit_price' must be an integer"),
        (b'{"type":"basket.update","pos_id":"P","txn_id":"T","lines":{}}',
         "'lines' must be a list"),
        (b'{"type":"refund","pos_id":"P","txn_id":"T","refund_id":"R","lines":[]}',
         "'lines' must not be empty"),
        (b'{"type":"txn.commit","pos_id":"P","txn_id":"T","x":NaN}', "NaN is not valid JSON"),
        (b'{"type":"coupon.present","pos_id":"P","txn_id":"T","code":"ABCDEFGH10"}',
         "coupon.present: field 'code' must be 10 characters of 2-9 and A-Z"),
        (b'{"type":"coupon.present","pos_id":"P","txn_id":"T","code":"abcdefghjk"}',
         "field 'code' must be 10 characters"),
        (b'{"type":"coupon.present","pos_id":"P","txn_id":"T"}',
         "coupon.present: field 'code' is missing"),
    ])
    def test_remote_errors_name_the_problem(self, payload: bytes, reason: str) -> None:
        """Bad payloads from the till raise RemoteProtocolError with a precise reason."""
        with pytest.raises(RemoteProtocolError) as info:
            decode_message(payload, "till")
        assert reason in info.value.reason

    def test_local_errors(self) -> None:
        """Making a message that breaks the schema raises LocalProtocolError naming the
        field: an invalid message cannot exist."""
        with pytest.raises(LocalProtocolError, match=r"points\.awarded: field 'repeated'"):
            PointsAwarded("P", "T", None, 1, 0, 1, 1)  # type: ignore[arg-type]
        with pytest.raises(LocalProtocolError, match=r"BasketItem: field 'unit_price' must "
                                                     "be at most"):
            BasketItem("A", 1, 10**19, "x")
        with pytest.raises(LocalProtocolError, match=r"points\.awarded: field 'repeated'"):
            message_from_dict({"type": "points.awarded", "pos_id": "P", "txn_id": "T",
                               "member_id": None, "points": 1, "balance_before": 0,
                               "balance_after": 1}, "terminal", remote=False)

    def test_visit_url_is_https_only(self) -> None:
        """points.awarded's visit link is an https:// address or absent, never plain HTTP."""
        base = {"type": "points.awarded", "pos_id": "P", "txn_id": "T", "member_id": "M",
                "points": 1, "balance_before": 0, "balance_after": 1, "repeated": False}
        with pytest.raises(RemoteProtocolError, match="'visit_url' must be an https:// URL"):
            message_from_dict({**base, "visit_url": "http://shop.example/v/ab"}, "terminal")
        assert "visit_url" not in message_from_dict(base, "terminal").to_dict()

    def test_direction_enforced(self) -> None:
        """A till cannot send a quote and a terminal cannot send a basket."""
        with pytest.raises(RemoteProtocolError, match="from the till"):
            message_from_dict({"type": "quote"}, "till")
        with pytest.raises(LocalProtocolError, match="from the terminal"):
            encode_message(BasketUpdate("P", "T", ()), "terminal")

    @given(st.binary(max_size=300))
    @settings(max_examples=300)
    def test_any_payload_gives_message_or_remote_error(self, payload: bytes) -> None:
        """Arbitrary payload bytes decode to a valid message or a RemoteProtocolError."""
        sides: tuple[Role, ...] = ("till", "terminal")
        for side in sides:
            try:
                decode_message(payload, side)
            except RemoteProtocolError as exc:
                assert exc.reason
