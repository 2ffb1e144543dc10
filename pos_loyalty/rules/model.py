"""Values the rules engine takes and returns. All money is integer minor units.

Everything here is a frozen value: the engine never mutates what it is given, and the
daemon persists what it gets back (``Quote.to_dict`` / ``Quote.from_dict``) so that a
later refund can reverse exactly what the sale did.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal, NamedTuple

from pos_loyalty.errors import RulesError

LineKind = Literal["discount", "points", "redeem"]
DISPLAY_WIDTH = 20  # a 2 x 20 customer display
RECEIPT_WIDTH = 40  # a 40-column receipt printer


def money(minor: int) -> str:
    """Minor units as the till shows them: 1234 -> '12.34'."""
    sign = "-" if minor < 0 else ""
    minor = abs(minor)
    return f"{sign}{minor // 100}.{minor % 100:02d}"


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "."


@dataclass(frozen=True)
class BasketLine:
    """One line of the till's basket."""

    sku: str
    qty: int
    unit_price: int
    category: str = ""

    def __post_init__(self) -> None:
        if not self.sku:
            raise RulesError("basket line has no sku")
        if self.qty <= 0:
            raise RulesError(f"line {self.sku}: quantity must be positive, got {self.qty}")
        if self.unit_price < 0:
            raise RulesError(f"line {self.sku}: unit price must not be negative")

    @property
    def amount(self) -> int:
        return self.qty * self.unit_price


@dataclass(frozen=True)
class ConfirmedCoupon:
    """A product tag's reorder coupon the terminal has already taken for this sale (central
    marked it used, or the offline bounds let it through): ``percent`` off one unit of
    ``sku`` (None: of the dearest item, as offline), at most ``max_value`` minor units."""

    code: str
    percent: int
    sku: str | None = None
    max_value: int | None = None

    def __post_init__(self) -> None:
        if not 0 < self.percent <= 100:
            raise RulesError(f"coupon {self.code}: percent must be 1..100, got {self.percent}")
        if self.max_value is not None and self.max_value < 0:
            raise RulesError(f"coupon {self.code}: max_value must not be negative")


@dataclass(frozen=True)
class Basket:
    """What the till is about to sell, as the till sent it.

    ``redeem_points`` is what the till asked to redeem (``redeem.request``); the engine
    grants at most what the program allows and says why in the quote. ``coupons`` are
    product tag coupons already confirmed for this sale (the engine only applies them).
    """

    lines: tuple[BasketLine, ...]
    merchant_id: str = ""
    redeem_points: int = 0
    coupons: tuple[ConfirmedCoupon, ...] = ()

    def __post_init__(self) -> None:
        if self.redeem_points < 0:
            raise RulesError("redeem_points must not be negative")

    @property
    def total(self) -> int:
        return sum(line.amount for line in self.lines)


@dataclass(frozen=True)
class PointsLot:
    """Points earned on one day; expiry works lot by lot (oldest spent first)."""

    earned_on: date
    points: int


@dataclass(frozen=True)
class Credit:
    """A next-purchase benefit granted by staff (service recovery): money or percent off."""

    credit_id: str
    amount: int = 0
    percent_bp: int = 0
    reason: str = ""
    expires: date | None = None


@dataclass(frozen=True)
class MemberView:
    """What the engine may know of a member: a snapshot taken from the store.

    Every field beyond the first seven has a default, so a daemon that knows only the
    basics still gets correct quotes for programs that do not need the rest.
    """

    member_id: str
    balance: int = 0
    tier: str | None = None
    lifetime_spend: int = 0
    visits: int = 0
    birthday: date | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    # Stamp cards: card name -> stamps held now.
    stamps: Mapping[str, int] = field(default_factory=dict)
    # Tiers: qualifying spend and visits in the current period, and when that period began.
    period_spend: int = 0
    period_visits: int = 0
    period_start: date | None = None
    # Paid membership: name of the plan and last valid day (inclusive).
    membership: str | None = None
    membership_expires: date | None = None
    # Personalised coupons held: code -> uses left. Coupons already used: code -> times.
    coupons: Mapping[str, int] = field(default_factory=dict)
    coupon_uses: Mapping[str, int] = field(default_factory=dict)
    # Segments the member belongs to (computed centrally from behaviour).
    segments: frozenset[str] = frozenset()
    # Service-recovery credits granted by staff, not yet used.
    credits: tuple[Credit, ...] = ()
    # Points lots with earn dates (for expiry); their sum may exceed balance (spent ones).
    lots: tuple[PointsLot, ...] = ()
    # Rules with a claim limit: rule id -> last day it was granted.
    claims: Mapping[str, date] = field(default_factory=dict)
    # Referral: the member id who referred this member, if any.
    referred_by: str | None = None


@dataclass(frozen=True)
class QuoteLine:
    """One explainable effect of a program on the sale.

    ``value`` is minor units for discount and redeem lines, points for points lines.
    ``beneficiary`` is empty for the member at the till, else the member id that gets the
    points (a referrer).
    """

    program: str
    kind: LineKind
    value: int
    text: str
    rule: str = ""
    beneficiary: str = ""
    label: str = ""  # the text without its amount, for the receipt form


@dataclass(frozen=True)
class Perk:
    """A non-monetary effect the daemon records: a coupon issued, a membership started,
    a gift to hand over, an instant-win game to offer, a tier change."""

    program: str
    code: str
    text: str
    count: int = 1
    until: date | None = None
    value: int = 0  # what it costs the store (minor units): coupon value, expected prize


class LineEffect(NamedTuple):
    """What the quote did to one basket line; refunds reverse these exactly.

    A NamedTuple rather than a dataclass: a quote makes one per basket line, and this is
    the cheapest immutable record Python has.
    """

    sku: str
    qty: int
    amount: int
    discount: int = 0
    redeem_value: int = 0
    redeem_points: int = 0
    points: int = 0
    stamps: tuple[tuple[str, int], ...] = ()

    @property
    def paid(self) -> int:
        return self.amount - self.discount - self.redeem_value


@dataclass(frozen=True)
class Quote:
    """The engine's answer: discounts (minor units) and points, each line explained."""

    lines: tuple[QuoteLine, ...]
    basket_total: int
    effects: tuple[LineEffect, ...] = ()
    perks: tuple[Perk, ...] = ()
    tax_total: int = 0
    tax_added: int = 0
    redeem_points: int = 0
    redeem_note: str = ""
    points_liability: int = 0
    stamps_after: tuple[tuple[str, int], ...] = ()
    coupons_used: tuple[str, ...] = ()
    credits_used: tuple[str, ...] = ()
    claims: tuple[str, ...] = ()
    merchant_id: str = ""
    qualifying_spend: int = 0
    # expiry decided at quote time (shop-local day): points past their date, never spendable,
    # and points that expire within the program's warn_days, with the first such day
    expired_points: int = 0
    expiring_points: int = 0
    expiring_on: date | None = None
    # service-recovery credits used only in part: credit id -> amount left for later
    credits_left: tuple[tuple[str, int], ...] = ()

    @property
    def discounts(self) -> int:
        """Money off from discount rules (not counting points paid as money)."""
        return sum(line.value for line in self.lines if line.kind == "discount")

    @property
    def discount_total(self) -> int:
        """All money off the sale: discounts plus points redeemed as money (the till's
        ``discount_total``, so ``total_due = basket_total + tax_added - discount_total``)."""
        return sum(line.value for line in self.lines if line.kind != "points")

    @property
    def redeem_value(self) -> int:
        return sum(line.value for line in self.lines if line.kind == "redeem")

    @property
    def points_total(self) -> int:
        """Points for the member at the till (not those going to a referrer)."""
        return sum(
            line.value for line in self.lines if line.kind == "points" and not line.beneficiary
        )

    @property
    def total_due(self) -> int:
        return self.basket_total + self.tax_added - self.discount_total

    @property
    def perks_value(self) -> int:
        """What the coupons, prizes and perks this sale issued cost the store."""
        return sum(p.value for p in self.perks)

    @property
    def cost(self) -> int:
        """What the quote costs the store: discounts given, liability of the points issued
        (a referrer's too) and the value of coupons and prizes issued. Points redeemed are
        not counted again: they were a cost when they were issued."""
        return self.discounts + self.points_liability + self.perks_value

    @property
    def summary(self) -> str:
        """The one line the till shows: '+12 pts (1 pt per 1.00) - 10% member discount'."""
        parts = [line.text for line in self.lines]
        parts.extend(perk.text for perk in self.perks)
        if self.redeem_note and self.redeem_note != "granted":
            parts.append(f"redemption: {self.redeem_note}")  # why less than asked
        if self.expiring_points and self.expiring_on:
            parts.append(f"{self.expiring_points} pts expire {self.expiring_on.isoformat()}")
        return " - ".join(parts) or "no loyalty effect"

    @property
    def display(self) -> tuple[str, str]:
        """The customer display's two lines of at most 20 characters: points, then money
        saved (or points about to expire, or the first perk)."""
        earned, used = self.points_total, self.redeem_points
        first = f"+{earned} pts"
        if used:
            first = f"+{earned} pts, {used} used"
            if len(first) > DISPLAY_WIDTH:
                first = f"+{earned}/-{used} pts"
        if self.discount_total:
            second = f"You save {money(self.discount_total)}"
        elif self.expiring_points and self.expiring_on:
            second = f"{self.expiring_points} exp {self.expiring_on.strftime('%d %b')}"
        elif self.perks:
            second = self.perks[0].text
        else:
            second = "Thank you"
        return _fit(first, DISPLAY_WIDTH), _fit(second, DISPLAY_WIDTH)

    @property
    def receipt(self) -> tuple[str, ...]:
        """The quote as 40-column receipt lines: each effect with its amount at the right,
        perks and notes wrapped, never cut."""
        out: list[str] = []
        for ln in self.lines:
            amount = f"+{ln.value} pts" if ln.kind == "points" else f"-{money(ln.value)}"
            label = ln.label or ln.text
            width = RECEIPT_WIDTH - len(amount) - 1
            parts = textwrap.wrap(label, width) or [""]
            out.extend(parts[:-1])
            out.append(f"{parts[-1]:<{width}} {amount}")
        notes = [f"* {p.text}" for p in self.perks]
        if self.redeem_note and self.redeem_note != "granted":
            notes.append(f"Points: {self.redeem_note}")
        if self.expired_points:  # not in the summary: the commit writes the expiry first,
            notes.append(f"{self.expired_points} pts expired")  # and the till's text stays
        if self.expiring_points and self.expiring_on:
            notes.append(f"{self.expiring_points} pts expire on "
                         f"{self.expiring_on.isoformat()}")
        for note in notes:
            out.extend(textwrap.wrap(note, RECEIPT_WIDTH, subsequent_indent="  "))
        return tuple(out)

    def till_fields(self) -> dict[str, Any]:
        """The fields of the till's ``quote`` message (the daemon adds type, pos_id, txn_id,
        member_id). Redeem lines carry money in minor units, like discount lines;
        ``discount_total`` includes them. ``display`` is the 2 x 20 customer display text.
        The 40-column receipt form (``receipt``) is not sent: with 20 rules it would push a
        quote past the link's 2048-byte payload."""
        return {
            "lines": [{"program": ln.program, "kind": ln.kind, "value": ln.value,
                       "text": ln.text} for ln in self.lines],
            "discount_total": self.discount_total,
            "points_total": self.points_total,
            "total_due": self.total_due,
            "summary": self.summary,
            "display": list(self.display),
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (the daemon stores it with the sale; refunds read it back)."""
        return {
            "basket_total": self.basket_total,
            "tax_total": self.tax_total,
            "tax_added": self.tax_added,
            "discount_total": self.discount_total,
            "redeem_value": self.redeem_value,
            "redeem_points": self.redeem_points,
            "redeem_note": self.redeem_note,
            "points_total": self.points_total,
            "total_due": self.total_due,
            "cost": {
                "discounts": self.discounts,
                "points_liability": self.points_liability,
                "perks": self.perks_value,
                "total": self.cost,
            },
            "expired_points": self.expired_points,
            "expiring_points": self.expiring_points,
            "expiring_on": self.expiring_on.isoformat() if self.expiring_on else None,
            "credits_left": dict(self.credits_left),
            "summary": self.summary,
            "merchant_id": self.merchant_id,
            "qualifying_spend": self.qualifying_spend,
            "lines": [
                {"program": ln.program, "kind": ln.kind, "value": ln.value, "text": ln.text,
                 "rule": ln.rule, "beneficiary": ln.beneficiary, "label": ln.label}
                for ln in self.lines
            ],
            "perks": [
                {"program": p.program, "code": p.code, "text": p.text, "count": p.count,
                 "until": p.until.isoformat() if p.until else None, "value": p.value}
                for p in self.perks
            ],
            "effects": [
                {"sku": e.sku, "qty": e.qty, "amount": e.amount, "discount": e.discount,
                 "redeem_value": e.redeem_value, "redeem_points": e.redeem_points,
                 "points": e.points, "stamps": {c: n for c, n in e.stamps}}
                for e in self.effects
            ],
            "stamps_after": dict(self.stamps_after),
            "coupons_used": list(self.coupons_used),
            "credits_used": list(self.credits_used),
            "claims": list(self.claims),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Quote:
        """Rebuild a quote stored with ``to_dict`` (derived totals are recomputed)."""
        try:
            return cls(
                lines=tuple(
                    QuoteLine(str(d["program"]), d["kind"], int(d["value"]), str(d["text"]),
                              str(d.get("rule", "")), str(d.get("beneficiary", "")),
                              str(d.get("label", "")))
                    for d in data["lines"]
                ),
                basket_total=int(data["basket_total"]),
                effects=tuple(
                    LineEffect(str(e["sku"]), int(e["qty"]), int(e["amount"]),
                               int(e.get("discount", 0)), int(e.get("redeem_value", 0)),
                               int(e.get("redeem_points", 0)), int(e.get("points", 0)),
                               tuple(sorted((str(c), int(n))
                                            for c, n in e.get("stamps", {}).items())))
                    for e in data.get("effects", ())
                ),
                perks=tuple(
                    Perk(str(p["program"]), str(p["code"]), str(p["text"]), int(p["count"]),
                         date.fromisoformat(p["until"]) if p.get("until") else None,
                         int(p.get("value", 0)))
                    for p in data.get("perks", ())
                ),
                tax_total=int(data.get("tax_total", 0)),
                tax_added=int(data.get("tax_added", 0)),
                redeem_points=int(data.get("redeem_points", 0)),
                redeem_note=str(data.get("redeem_note", "")),
                points_liability=int(data.get("cost", {}).get("points_liability", 0)),
                stamps_after=tuple(sorted(
                    (str(c), int(n)) for c, n in data.get("stamps_after", {}).items())),
                coupons_used=tuple(str(c) for c in data.get("coupons_used", ())),
                credits_used=tuple(str(c) for c in data.get("credits_used", ())),
                claims=tuple(str(c) for c in data.get("claims", ())),
                merchant_id=str(data.get("merchant_id", "")),
                qualifying_spend=int(data.get("qualifying_spend", 0)),
                expired_points=int(data.get("expired_points", 0)),
                expiring_points=int(data.get("expiring_points", 0)),
                expiring_on=date.fromisoformat(data["expiring_on"])
                if data.get("expiring_on") else None,
                credits_left=tuple(sorted(
                    (str(c), int(n)) for c, n in data.get("credits_left", {}).items())),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RulesError(f"stored quote is malformed: {exc!r}") from exc


@dataclass(frozen=True)
class LedgerEntry:
    """A change of a member's points, as a value the daemon writes to its ledger.

    ``kind`` is one of the ledger's kinds (earn, redeem, reversal, adjust, expire);
    ``points`` is signed (negative takes points away).
    """

    member_id: str
    kind: Literal["earn", "redeem", "reversal", "adjust", "expire"]
    points: int
    ref: str
    note: str = ""


def _req(data: Mapping[str, Any], key: str, what: str) -> Any:
    if key not in data:
        raise RulesError(f"{what}: '{key}' is missing")
    return data[key]


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RulesError(f"{what} must be an integer (minor units / points), got {value!r}")
    return value


def _count(value: Any, what: str) -> int:
    got = _int(value, what)
    if got < 0:
        raise RulesError(f"{what} must not be negative, got {got}")
    return got


def _day(value: Any, what: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise RulesError(f"{what} must be a date YYYY-MM-DD, got {value!r}") from exc


_BASKET_KEYS = frozenset({"lines", "merchant_id", "redeem_points", "type", "pos_id", "txn_id"})
_LINE_KEYS = frozenset({"sku", "qty", "unit_price", "category"})


def _no_extra(data: Mapping[str, Any], known: frozenset[str], what: str) -> None:
    extra = sorted(str(k) for k in set(data) - known)
    if extra:
        raise RulesError(f"{what}: unknown key(s) {', '.join(extra)} "
                         f"(known: {', '.join(sorted(known))})")


def basket_from_dict(data: Mapping[str, Any]) -> Basket:
    """A basket from the till's ``basket.update`` shape; unknown keys and lines without a
    ``category`` are refused (a misspelt key would silently skip a category rule)."""
    try:
        return _basket_from_dict(data)
    except (TypeError, AttributeError, ValueError) as exc:
        raise RulesError(f"basket: malformed value ({exc})") from exc


def _basket_from_dict(data: Mapping[str, Any]) -> Basket:
    if not isinstance(data, Mapping):
        raise RulesError("basket must be a JSON object with 'lines'")
    _no_extra(data, _BASKET_KEYS, "basket")
    raw = _req(data, "lines", "basket")
    if not isinstance(raw, list):
        raise RulesError("basket 'lines' must be a list")
    lines = []
    for n, item in enumerate(raw):
        what = f"basket line {n}"
        if not isinstance(item, Mapping):
            raise RulesError(f"{what} must be an object")
        _no_extra(item, _LINE_KEYS, what)
        category = _req(item, "category", what)
        if not isinstance(category, str):
            raise RulesError(f"{what} category must be a string, got {category!r}")
        lines.append(BasketLine(
            sku=str(_req(item, "sku", what)), qty=_int(_req(item, "qty", what), f"{what} qty"),
            unit_price=_int(_req(item, "unit_price", what), f"{what} unit_price"),
            category=category,
        ))
    return Basket(tuple(lines), merchant_id=str(data.get("merchant_id") or ""),
                  redeem_points=_int(data.get("redeem_points", 0), "redeem_points"))


def member_from_dict(data: Mapping[str, Any]) -> MemberView:
    """A member snapshot from JSON (dates as YYYY-MM-DD); unknown keys are refused."""
    try:
        return _member_from_dict(data)
    except (TypeError, AttributeError, ValueError) as exc:
        raise RulesError(f"member: malformed value ({exc})") from exc


def _member_from_dict(data: Mapping[str, Any]) -> MemberView:
    if not isinstance(data, Mapping):
        raise RulesError("member must be a JSON object")
    known = set(MemberView.__dataclass_fields__)
    extra = sorted(set(data) - known)
    if extra:
        raise RulesError(f"member: unknown field(s) {', '.join(extra)}")
    d = dict(data)
    if "balance" in d:  # may be negative: a refund of spent points can leave it below 0
        d["balance"] = _int(d["balance"], "member balance")
    for key in ("lifetime_spend", "visits", "period_spend", "period_visits"):
        if key in d:
            d[key] = _count(d[key], f"member {key}")
    for key in ("birthday", "period_start", "membership_expires"):
        if key in d:
            d[key] = _day(d[key], f"member {key}")
    for key in ("stamps", "coupons", "coupon_uses"):
        if key in d:
            if not isinstance(d[key], Mapping):
                raise RulesError(f"member {key} must be an object")
            d[key] = {str(k): _count(v, f"member {key}.{k}") for k, v in d[key].items()}
    if "claims" in d:
        d["claims"] = {str(k): _day(v, f"member claims.{k}") for k, v in d["claims"].items()}
    if "segments" in d:
        d["segments"] = frozenset(str(s) for s in d["segments"])
    if "attributes" in d:
        d["attributes"] = {str(k): str(v) for k, v in d["attributes"].items()}
    if "credits" in d:
        d["credits"] = tuple(
            Credit(str(_req(c, "credit_id", "credit")),
                   _count(c.get("amount", 0), "credit amount"),
                   _count(c.get("percent_bp", 0), "credit percent_bp"), str(c.get("reason", "")),
                   _day(c.get("expires"), "credit expires"))
            for c in d["credits"])
    if "lots" in d:
        d["lots"] = tuple(
            PointsLot(_day(_req(x, "earned_on", "lot"), "lot earned_on") or date.min,
                      _count(_req(x, "points", "lot"), "lot points"))
            for x in d["lots"])
    d["member_id"] = str(_req(d, "member_id", "member"))
    return MemberView(**d)
