"""The application messages carried in D frames: schema, validation, JSON encoding.

Every message is a JSON object with a ``type``; the fields each type needs, and which side may
send it, are the tables below (docs/pos-protocol.md lists them for vendors). Unknown extra
fields are accepted and passed through, so later versions can add fields without breaking v1
peers. Money is integer minor units, points are integers; booleans are never accepted as
integers.

Validation of what the peer sent raises RemoteProtocolError with a reason a vendor can act on;
validation of what we are about to send raises LocalProtocolError.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal

from pos_loyalty.errors import LocalProtocolError, RemoteProtocolError

Role = Literal["terminal", "till"]
MAX_ID_LEN: Final = 64
MAX_TEXT_LEN: Final = 500
MAX_LINES: Final = 200

Check = Callable[[Any, str], None]


class _Invalid(Exception):
    """Internal: a field failed its check (turned into the right ProtocolError)."""


def _fail(path: str, what: str) -> None:
    raise _Invalid(f"field '{path}' {what}")


def _is_int(v: Any) -> bool:
    return type(v) is int


def _str(max_len: int = MAX_TEXT_LEN, *, nonempty: bool = False) -> Check:
    def check(v: Any, path: str) -> None:
        if not isinstance(v, str):
            _fail(path, f"must be a string, not {type(v).__name__}")
        elif nonempty and not v:
            _fail(path, "must not be empty")
        elif len(v) > max_len:
            _fail(path, f"is longer than {max_len} characters")
    return check


def _ident() -> Check:
    return _str(MAX_ID_LEN, nonempty=True)


def _opt(inner: Check) -> Check:
    def check(v: Any, path: str) -> None:
        if v is not None:
            inner(v, path)
    return check


def _int(minimum: int | None = None) -> Check:
    def check(v: Any, path: str) -> None:
        if not _is_int(v):
            _fail(path, f"must be an integer, not {type(v).__name__}")
        elif minimum is not None and v < minimum:
            _fail(path, f"must be at least {minimum}")
    return check


def _number(v: Any, path: str) -> None:
    if not (_is_int(v) or type(v) is float):
        _fail(path, f"must be a number, not {type(v).__name__}")


def _bool(v: Any, path: str) -> None:
    if not isinstance(v, bool):
        _fail(path, f"must be true or false, not {type(v).__name__}")


def _one_of(*values: str) -> Check:
    def check(v: Any, path: str) -> None:
        if v not in values:
            _fail(path, f"must be one of {', '.join(values)}; got {v!r}")
    return check


def _list(item: Check, *, nonempty: bool = False) -> Check:
    def check(v: Any, path: str) -> None:
        if not isinstance(v, list):
            _fail(path, f"must be a list, not {type(v).__name__}")
            return
        if nonempty and not v:
            _fail(path, "must not be empty")
        if len(v) > MAX_LINES:
            _fail(path, f"has more than {MAX_LINES} entries")
        for i, x in enumerate(v):
            item(x, f"{path}[{i}]")
    return check


def _obj(fields: Mapping[str, Check], optional: Mapping[str, Check] | None = None) -> Check:
    def check(v: Any, path: str) -> None:
        if not isinstance(v, dict):
            _fail(path, f"must be an object, not {type(v).__name__}")
            return
        _check_fields(v, fields, optional or {}, f"{path}.")
    return check


def _check_fields(doc: Mapping[str, Any], fields: Mapping[str, Check],
                  optional: Mapping[str, Check], prefix: str = "") -> None:
    for name, check in fields.items():
        if name not in doc:
            raise _Invalid(f"field '{prefix}{name}' is missing")
        check(doc[name], prefix + name)
    for name, check in optional.items():
        if name in doc:
            check(doc[name], prefix + name)


_TXN: Final[dict[str, Check]] = {"pos_id": _ident(), "txn_id": _ident()}

QUOTE_LINE: Final = _obj({"program": _str(), "kind": _one_of("discount", "points", "redeem"),
                          "value": _int(), "text": _str()})
BASKET_LINE: Final = _obj({"sku": _ident(), "qty": _int(1), "unit_price": _int(0),
                           "category": _str(MAX_ID_LEN)})
REFUND_LINE: Final = _obj({"sku": _ident(), "qty": _int(1)})

# (required fields, optional fields) per message type, per sending side.
_Spec = tuple[dict[str, Check], dict[str, Check]]

_ERROR: Final[_Spec] = ({"code": _str(MAX_ID_LEN, nonempty=True), "message": _str()},
                        {"pos_id": _opt(_ident()), "txn_id": _opt(_ident())})

TERMINAL_MESSAGES: Final[dict[str, _Spec]] = {
    "member.identified": ({
        "card_id": _ident(), "member_id": _ident(), "name": _str(),
        "tier": _opt(_str(MAX_ID_LEN)), "balance": _int(), "discounts": _list(_str()),
        "tap_ms": _number,
    }, {}),
    "member.unknown": ({"card_id": _str(MAX_ID_LEN), "reason": _str()}, {}),
    "card.refused": ({"uid": _str(MAX_ID_LEN), "reason": _str(nonempty=True)}, {}),
    "quote": ({
        **_TXN, "member_id": _opt(_ident()), "lines": _list(QUOTE_LINE),
        "discount_total": _int(), "points_total": _int(), "total_due": _int(),
        "summary": _str(),
    }, {"display": _list(_str(20)),
        "program": _obj({"name": _str(), "version": _opt(_int(1))})}),
    "points.awarded": ({
        **_TXN, "member_id": _opt(_ident()), "points": _int(),
        "balance_before": _opt(_int()), "balance_after": _opt(_int()), "repeated": _bool,
    }, {}),
    "txn.status": ({
        **_TXN, "state": _one_of("unknown", "open", "committed", "voided", "refunded"),
        "points": _int(), "balance_after": _opt(_int()),
    }, {}),
    "error": _ERROR,
}
"""Messages the terminal sends to the till."""

TILL_MESSAGES: Final[dict[str, _Spec]] = {
    "basket.update": ({**_TXN, "lines": _list(BASKET_LINE)}, {}),
    "redeem.request": ({**_TXN, "points": _int(1)}, {}),
    "txn.commit": ({**_TXN}, {}),
    "txn.void": ({**_TXN}, {}),
    "refund": ({**_TXN, "refund_id": _ident(), "lines": _list(REFUND_LINE, nonempty=True)}, {}),
    "txn.status": ({**_TXN}, {}),
    "error": _ERROR,
}
"""Messages the till sends to the terminal (every request carries pos_id and txn_id)."""

REPLIES: Final[dict[str, frozenset[str]]] = {
    "basket.update": frozenset({"quote", "error"}),
    "redeem.request": frozenset({"quote", "error"}),
    "txn.commit": frozenset({"points.awarded", "error"}),
    "txn.void": frozenset({"txn.status", "error"}),
    "refund": frozenset({"points.awarded", "error"}),
    "txn.status": frozenset({"txn.status", "error"}),
}
"""For each till request, the message types the terminal may answer with."""


def schema_for(sender: Role) -> dict[str, _Spec]:
    """The message table of one sending side."""
    if sender == "terminal":
        return TERMINAL_MESSAGES
    if sender == "till":
        return TILL_MESSAGES
    raise LocalProtocolError(f"sender must be 'terminal' or 'till', not {sender!r}")


def _validate(message: object, sender: Role) -> dict[str, Any]:
    if not isinstance(message, dict):
        raise _Invalid(f"a message must be a JSON object, not {type(message).__name__}")
    mtype = message.get("type")
    if not isinstance(mtype, str):
        raise _Invalid("field 'type' is missing or not a string")
    table = schema_for(sender)
    spec = table.get(mtype)
    if spec is None:
        raise _Invalid(f"unknown message type {mtype!r} from the {sender}")
    required, optional = spec
    try:
        _check_fields(message, required, optional)
    except _Invalid as exc:
        raise _Invalid(f"{mtype}: {exc}") from None
    return message


def check_message(message: object, sender: Role) -> dict[str, Any]:
    """Validate a message received from ``sender``; RemoteProtocolError says what is wrong."""
    try:
        return _validate(message, sender)
    except _Invalid as exc:
        raise RemoteProtocolError(str(exc)) from None


def encode_message(message: Mapping[str, Any], sender: Role) -> bytes:
    """Validate and serialise a message we send; LocalProtocolError if it breaks the schema."""
    doc = dict(message)
    try:
        _validate(doc, sender)
    except _Invalid as exc:
        raise LocalProtocolError(str(exc)) from None
    try:
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=True,
                          allow_nan=False).encode("ascii")
    except (TypeError, ValueError) as exc:
        raise LocalProtocolError(f"message cannot be encoded as JSON: {exc}") from exc


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def decode_message(payload: bytes, sender: Role) -> dict[str, Any]:
    """Parse and validate a D-frame payload from ``sender``; RemoteProtocolError if bad."""
    try:
        doc = json.loads(payload.decode("utf-8"), parse_constant=_no_constants)
    except UnicodeDecodeError as exc:
        raise RemoteProtocolError(f"payload is not UTF-8: {exc.reason}") from exc
    except (ValueError, RecursionError) as exc:
        raise RemoteProtocolError(f"payload is not JSON: {exc}") from exc
    return check_message(doc, sender)


__all__ = [
    "REPLIES", "TERMINAL_MESSAGES", "TILL_MESSAGES", "Role",
    "check_message", "decode_message", "encode_message", "schema_for",
]
