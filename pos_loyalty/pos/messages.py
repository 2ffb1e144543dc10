"""The application messages carried in D frames, as frozen classes that validate themselves.

Like h11's events, every message is a small frozen dataclass whose constructor checks each
field (type, range, length) and raises LocalProtocolError naming the field: a message that
exists is valid. :func:`decode_message` turns a payload from the peer into its class or raises
RemoteProtocolError naming the field ("basket.update: field 'lines[0].unit_price' must be at
most 1000000000"); :func:`encode_message` turns a message into compact JSON. docs/pos-protocol.md
section 6 lists the same fields for vendors.

Money is integer minor units, points are integers; booleans are never accepted as integers;
every integer is bounded (the till's quantities, prices and points tightly), so a number the
peer sends cannot overflow the store or the rules. Fields a receiver does not know are
ignored, so later versions can add fields without breaking v1 peers.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Final, Literal, TypeVar

from pos_loyalty.errors import LocalProtocolError, RemoteProtocolError
from pos_loyalty.pos import jsontext

Role = Literal["terminal", "till"]
MAX_ID_LEN: Final = 64
MAX_TEXT_LEN: Final = 500
MAX_HINT_LEN: Final = 80
"""The cashier's line of ``member.identified``: one short line on the till's screen."""
DISPLAY_WIDTH: Final = 20  # a 2 x 20 customer display
DISPLAY_LINES: Final = 2
MAX_LINES: Final = 200
MAX_INT: Final = 2**53 - 1
"""Any integer field: what every JSON parser holds exactly."""
MAX_QTY: Final = 10_000
MAX_UNIT_PRICE: Final = 10**9
"""10,000,000.00 in a two-decimal currency; 200 lines x MAX_QTY x this fits in 64 bits."""
MAX_POINTS: Final = 10**9


class Unset(enum.Enum):
    """A field left out of a message (as opposed to sent as null)."""

    UNSET = enum.auto()


UNSET: Final = Unset.UNSET


# -- field checks ------------------------------------------------------------------------

class _Invalid(Exception):
    """Internal: a field failed its check (turned into the right ProtocolError)."""

    def __init__(self, path: str, what: str) -> None:
        super().__init__(f"field '{path}' {what}")
        self.path = path
        self.what = what


Check = Callable[[Any, str], None]


def _str(max_len: int = MAX_TEXT_LEN, *, nonempty: bool = False) -> Check:
    def check(v: Any, path: str) -> None:
        if not isinstance(v, str):
            raise _Invalid(path, f"must be a string, not {type(v).__name__}")
        if nonempty and not v:
            raise _Invalid(path, "must not be empty")
        if len(v) > max_len:
            raise _Invalid(path, f"is longer than {max_len} characters")
    return check


_IDENT: Final = _str(MAX_ID_LEN, nonempty=True)
_TEXT: Final = _str()
_SHORT: Final = _str(MAX_ID_LEN)


def _opt(inner: Check) -> Check:
    def check(v: Any, path: str) -> None:
        if v is not None:
            inner(v, path)
    return check


def _int(minimum: int = -MAX_INT, maximum: int = MAX_INT) -> Check:
    """An integer within [minimum, maximum]: a value the store and the rules can add up."""
    def check(v: Any, path: str) -> None:
        if type(v) is not int:
            raise _Invalid(path, f"must be an integer, not {type(v).__name__}")
        if v < minimum:
            raise _Invalid(path, f"must be at least {minimum}")
        if v > maximum:
            raise _Invalid(path, f"must be at most {maximum}")
    return check


_INT: Final = _int()


def _number(v: Any, path: str) -> None:
    if not (type(v) is int or type(v) is float):
        raise _Invalid(path, f"must be a number, not {type(v).__name__}")
    if not -MAX_INT <= v <= MAX_INT:
        raise _Invalid(path, f"must be within -{MAX_INT}..{MAX_INT}")


def _bool(v: Any, path: str) -> None:
    if not isinstance(v, bool):
        raise _Invalid(path, f"must be true or false, not {type(v).__name__}")


def _one_of(*values: str) -> Check:
    def check(v: Any, path: str) -> None:
        if v not in values:
            raise _Invalid(path, f"must be one of {', '.join(values)}; got {v!r}")
    return check


def _items(item: type | Check, *, nonempty: bool = False) -> Check:
    """A tuple (a JSON list) of at most MAX_LINES ``item`` instances (or values ``item``
    checks)."""
    def check(v: Any, path: str) -> None:
        if not isinstance(v, tuple):
            raise _Invalid(path, f"must be a list, not {type(v).__name__}")
        if nonempty and not v:
            raise _Invalid(path, "must not be empty")
        if len(v) > MAX_LINES:
            raise _Invalid(path, f"has more than {MAX_LINES} entries")
        for i, x in enumerate(v):
            if isinstance(item, type):
                if not isinstance(x, item):
                    raise _Invalid(f"{path}[{i}]", f"must be a {item.__name__}")
            else:
                item(x, f"{path}[{i}]")
    return check


def _display(v: Any, path: str) -> None:
    _items(_str(DISPLAY_WIDTH))(v, path)
    if len(v) > DISPLAY_LINES:
        raise _Invalid(path, f"has more than {DISPLAY_LINES} lines")


def _program_tag(v: Any, path: str) -> None:
    if not isinstance(v, Mapping):
        raise _Invalid(path, f"must be an object, not {type(v).__name__}")
    if set(v) != {"name", "version"}:
        raise _Invalid(path, "must have exactly the fields name and version")
    _TEXT(v["name"], f"{path}.name")
    _opt(_int(1, MAX_POINTS))(v["version"], f"{path}.version")


_COUPON_RE: Final = re.compile(r"[2-9A-Z]{10}")
"""A product tag's reorder coupon code as the phone page shows it (no 0/O, 1/I)."""


def _coupon_code(v: Any, path: str) -> None:
    if not isinstance(v, str) or not _COUPON_RE.fullmatch(v):
        raise _Invalid(path, "must be 10 characters of 2-9 and A-Z (a coupon code)")


def _https_url(v: Any, path: str) -> None:
    _str()(v, path)
    if not v.startswith("https://"):
        raise _Invalid(path, "must be an https:// URL")


def _member_binding(v: Any, path: str) -> None:
    if v is not UNSET:
        _opt(_IDENT)(v, path)


# -- the classes -------------------------------------------------------------------------

class _Record:
    """Base of messages and their list items: checks every field in ``CHECKS`` on creation.

    ``LISTS`` names the fields that are JSON lists, with the class of their items (None for
    plain values); ``OMIT_NONE`` the optional fields left out of the JSON when None.
    """

    CHECKS: ClassVar[Mapping[str, Check]]
    LISTS: ClassVar[Mapping[str, type[_Record] | None]] = {}
    OMIT_NONE: ClassVar[frozenset[str]] = frozenset()

    def __post_init__(self) -> None:
        try:
            self._check()
        except _Invalid as exc:
            raise LocalProtocolError(f"{self._label()}: {exc}") from None

    def _check(self) -> None:
        checks = self.CHECKS
        for name in _names(type(self)):
            checks[name](getattr(self, name), name)

    @classmethod
    def _label(cls) -> str:
        return cls.__name__

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this message or item (lists as lists, left-out fields out)."""
        out: dict[str, Any] = {}
        for name in _names(type(self)):
            value = getattr(self, name)
            if value is UNSET or (value is None and name in self.OMIT_NONE):
                continue
            if name in self.LISTS:
                value = [x.to_dict() if isinstance(x, _Record) else x for x in value]
            out[name] = value
        return out


_NAMES: dict[type, tuple[str, ...]] = {}


def _names(cls: type) -> tuple[str, ...]:
    """The field names of a message class, in order (cached: messages are made per tap)."""
    names = _NAMES.get(cls)
    if names is None:
        names = _NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


R = TypeVar("R", bound=_Record)


def _build(cls: type[R], doc: Any, path: str) -> R:
    """``cls`` from a JSON object, every failure an _Invalid naming the field's full path."""
    if not isinstance(doc, dict):
        raise _Invalid(path.rstrip("."), f"must be an object, not {type(doc).__name__}")
    kwargs: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name not in doc:
            if f.name in cls.OMIT_NONE or f.default is UNSET:
                continue
            raise _Invalid(path + f.name, "is missing")
        value = doc[f.name]
        if f.name in cls.LISTS:
            if not isinstance(value, list):
                raise _Invalid(path + f.name, f"must be a list, not {type(value).__name__}")
            if len(value) > MAX_LINES:
                raise _Invalid(path + f.name, f"has more than {MAX_LINES} entries")
            item = cls.LISTS[f.name]
            value = tuple(value) if item is None else tuple(
                _build(item, x, f"{path}{f.name}[{i}].") for i, x in enumerate(value))
        kwargs[f.name] = value
    # made without __init__, so that a failed check names the field's full path
    obj = cls.__new__(cls)
    for f in fields(cls):  # type: ignore[arg-type]
        value = kwargs.get(f.name, f.default)
        cls.CHECKS[f.name](value, path + f.name)
        object.__setattr__(obj, f.name, value)
    return obj


@dataclass(frozen=True, slots=True)
class BasketItem(_Record):
    """One basket line: ``unit_price`` in minor units."""

    sku: str
    qty: int
    unit_price: int
    category: str
    CHECKS: ClassVar[Mapping[str, Check]] = {
        "sku": _IDENT, "qty": _int(1, MAX_QTY), "unit_price": _int(0, MAX_UNIT_PRICE),
        "category": _SHORT}


@dataclass(frozen=True, slots=True)
class ReturnItem(_Record):
    """One line of a refund: what comes back."""

    sku: str
    qty: int
    CHECKS: ClassVar[Mapping[str, Check]] = {"sku": _IDENT, "qty": _int(1, MAX_QTY)}


@dataclass(frozen=True, slots=True)
class QuoteItem(_Record):
    """One line of a quote: ``value`` is minor units (discount, redeem) or points."""

    program: str
    kind: str
    value: int
    text: str
    CHECKS: ClassVar[Mapping[str, Check]] = {
        "program": _TEXT, "kind": _one_of("discount", "points", "redeem"), "value": _INT,
        "text": _TEXT}


class Message(_Record):
    """A message in a D frame; ``TYPE`` is its JSON ``type``, ``SENDERS`` who may send it."""

    TYPE: ClassVar[str]
    SENDERS: ClassVar[frozenset[Role]]

    @classmethod
    def _label(cls) -> str:
        return cls.TYPE

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE, **super().to_dict()}


_TERMINAL: Final[frozenset[Role]] = frozenset({"terminal"})
_TILL: Final[frozenset[Role]] = frozenset({"till"})
_TXN: Final[dict[str, Check]] = {"pos_id": _IDENT, "txn_id": _IDENT}


# terminal -> till

@dataclass(frozen=True, slots=True)
class MemberIdentified(Message):
    """A member card was tapped and recognised; ``tap_ms`` is the terminal-added latency."""

    card_id: str
    member_id: str
    name: str
    tier: str | None
    balance: int
    discounts: tuple[str, ...]
    tap_ms: float
    hint: str | None = None
    """One short line for the cashier ("birthday on Friday"), at most 80 characters
    (optional; left out when there is none)."""
    TYPE: ClassVar[str] = "member.identified"
    SENDERS: ClassVar[frozenset[Role]] = _TERMINAL
    LISTS: ClassVar[Mapping[str, type[_Record] | None]] = {"discounts": None}
    OMIT_NONE: ClassVar[frozenset[str]] = frozenset({"hint"})
    CHECKS: ClassVar[Mapping[str, Check]] = {
        "card_id": _IDENT, "member_id": _IDENT, "name": _TEXT, "tier": _opt(_SHORT),
        "balance": _INT, "discounts": _items(_TEXT), "tap_ms": _number,
        "hint": _opt(_str(MAX_HINT_LEN))}


@dataclass(frozen=True, slots=True)
class MemberUnknown(Message):
    """A card of ours, not registered here."""

    card_id: str
    reason: str
    TYPE: ClassVar[str] = "member.unknown"
    SENDERS: ClassVar[frozenset[Role]] = _TERMINAL
    CHECKS: ClassVar[Mapping[str, Check]] = {"card_id": _SHORT, "reason": _TEXT}


@dataclass(frozen=True, slots=True)
class CardRefused(Message):
    """A tag that is not a valid member card; ``reason`` is for the cashier."""

    uid: str
    reason: str
    TYPE: ClassVar[str] = "card.refused"
    SENDERS: ClassVar[frozenset[Role]] = _TERMINAL
    CHECKS: ClassVar[Mapping[str, Check]] = {"uid": _SHORT, "reason": _str(nonempty=True)}


@dataclass(frozen=True, slots=True)
class ProductTapped(Message):
    """A genuine product tag (our signed NTAG21x or NTAG 424 DNA SUN) was tapped: linked to
    the member of the open sale ``pos_id``/``txn_id`` (``linked`` true), or not, with
    ``text`` saying why, for the cashier. Never an error: a product tag is no member card."""

    uid: str
    sku: str
    linked: bool
    member_id: str | None
    pos_id: str | None
    txn_id: str | None
    text: str
    TYPE: ClassVar[str] = "product.tapped"
    SENDERS: ClassVar[frozenset[Role]] = _TERMINAL
    CHECKS: ClassVar[Mapping[str, Check]] = {
        "uid": _IDENT, "sku": _IDENT, "linked": _bool, "member_id": _opt(_IDENT),
        "pos_id": _opt(_IDENT), "txn_id": _opt(_IDENT), "text": _str(nonempty=True)}


@dataclass(frozen=True, slots=True)
class QuoteReply(Message):
    """The answer to basket.update and redeem.request, for ``member_id`` (None: nobody)."""

    pos_id: str
    txn_id: str
    member_id: str | None
    lines: tuple[QuoteItem, ...]
    discount_total: int
    points_total: int
    total_due: int
    summary: str
    display: tuple[str, ...] | None = None
    """The customer display's text: at most 2 lines of at most 20 characters (optional)."""
    program: Mapping[str, Any] | None = None
    """The program that quoted: ``{"name": str, "version": int or None}`` (optional)."""
    TYPE: ClassVar[str] = "quote"
    SENDERS: ClassVar[frozenset[Role]] = _TERMINAL
    LISTS: ClassVar[Mapping[str, type[_Record] | None]] = {"lines": QuoteItem, "display": None}
    OMIT_NONE: ClassVar[frozenset[str]] = frozenset({"display", "program"})
    CHECKS: ClassVar[Mapping[str, Check]] = {
        **_TXN, "member_id": _opt(_IDENT), "lines": _items(QuoteItem),
        "discount_total": _INT, "points_total": _INT, "total_due": _INT, "summary": _TEXT,
        "display": _opt(_display), "program": _opt(_program_tag)}


@dataclass(frozen=True, slots=True)
class PointsAwarded(Message):
    """The answer to txn.commit and refund; ``deducted`` (refunds only, optional) is money
    kept back for points already spent."""

    pos_id: str
    txn_id: str
    member_id: str | None
    points: int
    balance_before: int | None
    balance_after: int | None
    repeated: bool
    deducted: int | None = None
    visit_url: str | None = None
    """A member's sale (not a refund): the https short link to the one question about this
    visit, for the receipt or a QR code (optional: only when central's address is set)."""
    TYPE: ClassVar[str] = "points.awarded"
    SENDERS: ClassVar[frozenset[Role]] = _TERMINAL
    OMIT_NONE: ClassVar[frozenset[str]] = frozenset({"deducted", "visit_url"})
    CHECKS: ClassVar[Mapping[str, Check]] = {
        **_TXN, "member_id": _opt(_IDENT), "points": _INT, "balance_before": _opt(_INT),
        "balance_after": _opt(_INT), "repeated": _bool, "deducted": _opt(_INT),
        "visit_url": _opt(_https_url)}


TxnState = Literal["unknown", "open", "committed", "voided", "refunded"]


@dataclass(frozen=True, slots=True)
class TxnStatus(Message):
    """What the terminal knows of a sale: the answer to txn.void and txn.status."""

    pos_id: str
    txn_id: str
    state: TxnState
    points: int
    balance_after: int | None
    TYPE: ClassVar[str] = "txn.status"
    SENDERS: ClassVar[frozenset[Role]] = _TERMINAL
    CHECKS: ClassVar[Mapping[str, Check]] = {
        **_TXN, "state": _one_of("unknown", "open", "committed", "voided", "refunded"),
        "points": _INT, "balance_after": _opt(_INT)}


@dataclass(frozen=True, slots=True)
class Error(Message):
    """A request that cannot be answered (either side); ``code`` is in section 7.2."""

    code: str
    message: str
    pos_id: str | None = None
    txn_id: str | None = None
    TYPE: ClassVar[str] = "error"
    SENDERS: ClassVar[frozenset[Role]] = frozenset({"terminal", "till"})
    OMIT_NONE: ClassVar[frozenset[str]] = frozenset({"pos_id", "txn_id"})
    CHECKS: ClassVar[Mapping[str, Check]] = {
        "code": _str(MAX_ID_LEN, nonempty=True), "message": _TEXT,
        "pos_id": _opt(_IDENT), "txn_id": _opt(_IDENT)}


# till -> terminal: every request names its sale

@dataclass(frozen=True, slots=True)
class BasketUpdate(Message):
    """The whole basket of a sale; ``member_id`` says who it is for (section 6.4): a member
    identified at this till, None for nobody, UNSET (left out) for the member tapped since."""

    pos_id: str
    txn_id: str
    lines: tuple[BasketItem, ...]
    member_id: str | Unset | None = UNSET
    TYPE: ClassVar[str] = "basket.update"
    SENDERS: ClassVar[frozenset[Role]] = _TILL
    LISTS: ClassVar[Mapping[str, type[_Record] | None]] = {"lines": BasketItem}
    CHECKS: ClassVar[Mapping[str, Check]] = {
        **_TXN, "lines": _items(BasketItem), "member_id": _member_binding}


@dataclass(frozen=True, slots=True)
class RedeemRequest(Message):
    """Redeem ``points`` on an open sale; 0 cancels the redemption."""

    pos_id: str
    txn_id: str
    points: int
    TYPE: ClassVar[str] = "redeem.request"
    SENDERS: ClassVar[frozenset[Role]] = _TILL
    CHECKS: ClassVar[Mapping[str, Check]] = {**_TXN, "points": _int(0, MAX_POINTS)}


@dataclass(frozen=True, slots=True)
class CouponPresent(Message):
    """The customer shows a product tag's reorder coupon (from the phone page) for an open
    sale: the terminal confirms it with central, once chain-wide, and quotes again."""

    pos_id: str
    txn_id: str
    code: str
    TYPE: ClassVar[str] = "coupon.present"
    SENDERS: ClassVar[frozenset[Role]] = _TILL
    CHECKS: ClassVar[Mapping[str, Check]] = {**_TXN, "code": _coupon_code}


@dataclass(frozen=True, slots=True)
class TxnCommit(Message):
    """The sale is paid: award its points (once, however often it is repeated)."""

    pos_id: str
    txn_id: str
    TYPE: ClassVar[str] = "txn.commit"
    SENDERS: ClassVar[frozenset[Role]] = _TILL
    CHECKS: ClassVar[Mapping[str, Check]] = _TXN


@dataclass(frozen=True, slots=True)
class TxnVoid(Message):
    """The sale is abandoned."""

    pos_id: str
    txn_id: str
    TYPE: ClassVar[str] = "txn.void"
    SENDERS: ClassVar[frozenset[Role]] = _TILL
    CHECKS: ClassVar[Mapping[str, Check]] = _TXN


@dataclass(frozen=True, slots=True)
class RefundRequest(Message):
    """Lines of a committed sale come back; ``refund_id`` makes a repeat harmless."""

    pos_id: str
    txn_id: str
    refund_id: str
    lines: tuple[ReturnItem, ...]
    TYPE: ClassVar[str] = "refund"
    SENDERS: ClassVar[frozenset[Role]] = _TILL
    LISTS: ClassVar[Mapping[str, type[_Record] | None]] = {"lines": ReturnItem}
    CHECKS: ClassVar[Mapping[str, Check]] = {
        **_TXN, "refund_id": _IDENT, "lines": _items(ReturnItem, nonempty=True)}


@dataclass(frozen=True, slots=True)
class TxnStatusRequest(Message):
    """What happened to this sale? (a restarted till asks before anything else)"""

    pos_id: str
    txn_id: str
    TYPE: ClassVar[str] = "txn.status"
    SENDERS: ClassVar[frozenset[Role]] = _TILL
    CHECKS: ClassVar[Mapping[str, Check]] = _TXN


TillRequest = BasketUpdate | RedeemRequest | CouponPresent | TxnCommit | TxnVoid | \
    RefundRequest | TxnStatusRequest
TerminalReply = QuoteReply | PointsAwarded | TxnStatus | Error
TerminalNotice = MemberIdentified | MemberUnknown | CardRefused | ProductTapped

TERMINAL_MESSAGES: Final[dict[str, type[Message]]] = {
    cls.TYPE: cls for cls in (MemberIdentified, MemberUnknown, CardRefused, ProductTapped,
                              QuoteReply, PointsAwarded, TxnStatus, Error)}
"""Messages the terminal sends to the till, by type."""

TILL_MESSAGES: Final[dict[str, type[Message]]] = {
    cls.TYPE: cls for cls in (BasketUpdate, RedeemRequest, CouponPresent, TxnCommit, TxnVoid,
                              RefundRequest, TxnStatusRequest, Error)}
"""Messages the till sends to the terminal, by type (every request names pos_id, txn_id)."""

REPLIES: Final[dict[str, frozenset[str]]] = {
    "basket.update": frozenset({"quote", "error"}),
    "redeem.request": frozenset({"quote", "error"}),
    "coupon.present": frozenset({"quote", "error"}),
    "txn.commit": frozenset({"points.awarded", "error"}),
    "txn.void": frozenset({"txn.status", "error"}),
    "refund": frozenset({"points.awarded", "error"}),
    "txn.status": frozenset({"txn.status", "error"}),
}
"""For each till request, the message types the terminal may answer with."""


def schema_for(sender: Role) -> dict[str, type[Message]]:
    """The message classes of one sending side, by type."""
    if sender == "terminal":
        return TERMINAL_MESSAGES
    if sender == "till":
        return TILL_MESSAGES
    raise LocalProtocolError(f"sender must be 'terminal' or 'till', not {sender!r}")


def _problem(doc: object, sender: Role) -> tuple[Message | None, str]:
    """(the message, "") or (None, what is wrong with it, naming the field)."""
    if not isinstance(doc, dict):
        return None, f"a message must be a JSON object, not {type(doc).__name__}"
    mtype = doc.get("type")
    if not isinstance(mtype, str):
        return None, "field 'type' is missing or not a string"
    cls = schema_for(sender).get(mtype)
    if cls is None:
        return None, f"unknown message type {mtype!r} from the {sender}"
    try:
        return _build(cls, doc, ""), ""
    except _Invalid as exc:
        return None, f"{mtype}: {exc}"


def message_from_dict(doc: object, sender: Role, *, remote: bool = True) -> Message:
    """The message class for a JSON object from ``sender``: RemoteProtocolError naming the
    field (LocalProtocolError with ``remote=False``, for objects we built ourselves)."""
    message, problem = _problem(doc, sender)
    if message is None:
        raise (RemoteProtocolError if remote else LocalProtocolError)(problem)
    return message


def decode_message(payload: bytes, sender: Role) -> Message:
    """Parse and validate a D-frame payload from ``sender``; RemoteProtocolError if bad."""
    try:
        doc = jsontext.loads(payload)
    except jsontext.JsonTextError as exc:
        raise RemoteProtocolError(f"payload is {exc}") from exc
    return message_from_dict(doc, sender)


def encode_message(message: Message, sender: Role) -> bytes:
    """Compact ASCII JSON of ``message``; LocalProtocolError if ``sender`` may not send it."""
    if sender not in message.SENDERS:
        raise LocalProtocolError(f"{message.TYPE} is not a message from the {sender}")
    return json.dumps(message.to_dict(), separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("ascii")


__all__ = [
    "REPLIES", "TERMINAL_MESSAGES", "TILL_MESSAGES", "UNSET", "BasketItem", "BasketUpdate",
    "CardRefused", "CouponPresent", "Error", "MemberIdentified", "MemberUnknown", "Message",
    "PointsAwarded", "ProductTapped", "QuoteItem", "QuoteReply", "RedeemRequest",
    "RefundRequest", "ReturnItem", "Role", "TerminalNotice", "TerminalReply", "TillRequest",
    "TxnCommit", "TxnStatus", "TxnStatusRequest", "TxnVoid", "Unset", "decode_message",
    "encode_message", "message_from_dict", "schema_for",
]
