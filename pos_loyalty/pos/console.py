"""The reference till's command language (``pos-loyalty sim pos``), typed or scripted.

One command per line; ``#`` starts a comment. The console keeps the current transaction and its
basket, sends the matching till requests through a SimulatedTill and prints what the cashier
would see. ``expect`` and ``wait`` make scripts self-checking.
"""

from __future__ import annotations

import json
import shlex
import threading
import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from pos_loyalty.errors import LocalProtocolError, LoyaltyError, SerialLinkError
from pos_loyalty.pos.till import SimulatedTill

UNPROMPTED = {"member.identified", "member.unknown", "card.refused", "product.tapped"}

HELP = """\
commands (one per line, # for comments):
  new [TXN]                      start a new sale (default: next number)
  line SKU QTY PRICE [CATEGORY]  add a line and send the basket; PRICE 3.00 is an
                                 amount, 300 (no point) is minor units
  remove SKU                     remove a line and send the basket
  basket                         send the current basket again
  member [MEMBER_ID|none]        who the sale is for (default: the member tapped last);
                                 none takes the member off; the basket is sent again
  redeem POINTS                  redeem points on the current sale (0 cancels)
  unredeem                       cancel the redemption on the current sale
  coupon CODE                    the customer's reorder coupon (from a product tag's
                                 page) on the current sale: checked with central, once
  commit                         commit the current sale (the next line starts a new one)
  void [TXN]                     void a sale (default: current)
  refund TXN REFUND_ID SKU:QTY...  refund lines of a committed sale
  status [TXN]                   ask what the terminal knows of a sale
  wait [TYPE] [SECONDS]          wait for a message from the terminal (a member tap)
  expect FIELD=VALUE...          check the last message received (scripts)
  sleep SECONDS                  pause
  help, quit"""


class ConsoleError(LoyaltyError):
    """A command line cannot be executed (unknown command, bad argument)."""


class ExpectationFailed(LoyaltyError):
    """An ``expect`` command did not hold."""


def money(minor: int) -> str:
    """Minor units as a decimal amount: 1099 -> '10.99'."""
    sign = "-" if minor < 0 else ""
    return f"{sign}{abs(minor) // 100}.{abs(minor) % 100:02d}"


def parse_price(text: str) -> int:
    """A price as the cashier types it: '3.00' or '3.5' is an amount, '300' minor units."""
    if "." not in text:
        return int(text)
    try:
        amount = Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(f"price {text!r} is not a number") from exc
    minor = amount * 100
    if not amount.is_finite() or minor != minor.to_integral_value():
        raise ValueError(f"price {text!r} has more than two decimals")
    return int(minor)


def describe(msg: dict[str, Any]) -> str:
    """One or more lines a cashier would read for a terminal message."""
    t = msg.get("type")
    if t == "member.identified":
        tier = f" ({msg['tier']})" if msg.get("tier") else ""
        extra = "".join(f"\n     {d}" for d in msg.get("discounts", []))
        hint = f"\n     > {msg['hint']}" if msg.get("hint") else ""
        return (f"member {msg['name']}{tier}, {msg['balance']} points "
                f"[card {msg['card_id']}, {msg['tap_ms']} ms]{hint}{extra}")
    if t == "member.unknown":
        return f"unknown card {msg['card_id']}: {msg['reason']}"
    if t == "card.refused":
        return f"card refused ({msg['uid']}): {msg['reason']}"
    if t == "product.tapped":
        return f"product {msg['sku']} ({msg['uid']}): {msg['text']}"
    if t == "quote":
        lines = "".join(f"\n     {ln['kind']:8} {ln['value']:>7}  {ln['text']}"
                        for ln in msg["lines"])
        return (f"quote {msg['txn_id']} for {msg.get('member_id') or 'no member'}: "
                f"total due {money(msg['total_due'])}, discount "
                f"{money(msg['discount_total'])}, points {msg['points_total']} - "
                f"{msg['summary']}{lines}")
    if t == "points.awarded":
        rep = " (repeated, nothing changed)" if msg["repeated"] else ""
        balance = ("no member" if msg["balance_after"] is None else
                   f"balance {msg['balance_before']} -> {msg['balance_after']}")
        visit = f"\n     receipt link: {msg['visit_url']}" if msg.get("visit_url") else ""
        return f"points {msg['txn_id']}: {msg['points']:+d}, {balance}{rep}{visit}"
    if t == "txn.status":
        return (f"status {msg['txn_id']}: {msg['state']}, points {msg['points']}, "
                f"balance {msg['balance_after']}")
    if t == "error":
        return f"error {msg['code']}: {msg['message']}"
    return json.dumps(msg)


class TillConsole:
    """Executes console commands against a started SimulatedTill."""

    def __init__(self, till: SimulatedTill, out: Callable[[str], None], *,
                 raw_json: bool = False, txn_prefix: str = "T-") -> None:
        self.till = till
        self.out = out
        self.raw_json = raw_json
        self.txn_prefix = txn_prefix
        self.txn_no = 0
        self.txn_id = ""
        self.lines: list[dict[str, Any]] = []
        self.committed = False
        self.tapped: dict[str, Any] | None = None
        """The last member.identified (the member shown on the till's screen)."""
        self.member: dict[str, Any] | None = None
        """The member the current sale is for (sent as member_id in every basket)."""
        self._sent_for: str | None = None  # member_id of the last basket sent
        self.last: dict[str, Any] | None = None
        self._received: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="till-console", daemon=True)
        self.new_txn()

    def start(self) -> None:
        """Start printing unprompted terminal messages as they arrive."""
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self.till.next_message(UNPROMPTED, timeout=0.2)
            except SerialLinkError:
                continue
            self._show(msg)
            if msg["type"] == "member.identified":
                self._member_tapped(msg)
            with self._cond:
                self._received.append(msg)
                self.last = msg
                self._cond.notify_all()

    def _member_tapped(self, msg: dict[str, Any]) -> None:
        """A tap binds a sale that has no member yet; a second member is for the cashier to
        decide (the terminal would refuse the commit with member_changed anyway)."""
        self.tapped = msg
        if self.committed:
            return  # the next line starts the next sale, for this member
        if self.member is None:
            self.member = msg
            self.out(f"-- sale {self.txn_id} is for {msg['name']} ({msg['member_id']})")
        elif self.member["member_id"] != msg["member_id"]:
            self.out(f"!! {msg['name']} ({msg['member_id']}) tapped during sale {self.txn_id}"
                     f" for {self.member['name']}: 'member {msg['member_id']}' to switch, "
                     f"'member {self.member['member_id']}' to keep")

    def _show(self, msg: dict[str, Any]) -> None:
        self.out("<- " + (json.dumps(msg) if self.raw_json else describe(msg)))

    def _reply(self, msg: dict[str, Any]) -> dict[str, Any]:
        self._show(msg)
        self.last = msg
        return msg

    def new_txn(self, txn_id: str | None = None) -> None:
        """Start the next sale, for the member on the screen if their tap came after the
        last commit."""
        self.txn_no += 1
        self.txn_id = txn_id or f"{self.txn_prefix}{self.txn_no:04d}"
        self.lines = []
        self.member = self.tapped if self.committed else None
        self.tapped = self.member
        self.committed = False

    def _current(self) -> None:
        """A change to the basket after a commit starts the next sale."""
        if self.committed:
            self.new_txn()
            self.out(f"-- sale {self.txn_id}" + (f" for {self.member['name']}"
                                                  if self.member else ""))

    # -- commands --------------------------------------------------------------------------

    def execute(self, line: str) -> bool:
        """Run one command line; False when the command was ``quit``."""
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            raise ConsoleError(f"cannot parse {line!r}: {exc}") from exc
        if not words:
            return True
        cmd, args = words[0].lower(), words[1:]
        handler = getattr(self, f"_cmd_{cmd}", None)
        if handler is None:
            raise ConsoleError(f"unknown command {cmd!r} (try 'help')")
        try:
            result = handler(args)
        except (IndexError, ValueError) as exc:
            raise ConsoleError(f"{cmd}: bad arguments {args!r} ({exc}); try 'help'") from exc
        except LocalProtocolError as exc:  # arguments the protocol refuses: nothing sent
            raise ConsoleError(f"{cmd}: {exc}") from exc
        return result is not False

    def _cmd_help(self, args: list[str]) -> None:
        self.out(HELP)

    def _cmd_quit(self, args: list[str]) -> bool:
        return False

    _cmd_exit = _cmd_quit

    def _cmd_new(self, args: list[str]) -> None:
        self.new_txn(args[0] if args else None)
        self.out(f"-- sale {self.txn_id}")

    def _send_basket(self) -> None:
        total = sum(x["qty"] * x["unit_price"] for x in self.lines)
        member_id = self.member["member_id"] if self.member else None
        self.out(f"-> basket {self.txn_id}: {len(self.lines)} line(s), {money(total)}, "
                 f"for {member_id or 'no member'}")
        self._reply(self.till.send_basket(self.txn_id, self.lines, member_id=member_id))
        self._sent_for = member_id

    def _cmd_line(self, args: list[str]) -> None:
        sku, qty, price = args[0], int(args[1]), parse_price(args[2])
        category = args[3] if len(args) > 3 else ""
        self._current()
        self.lines.append({"sku": sku, "qty": qty, "unit_price": price, "category": category})
        self._send_basket()

    def _cmd_member(self, args: list[str]) -> None:
        if not args:
            if self.tapped is None:
                raise ConsoleError("no member has tapped yet")
            self.member = self.tapped
        elif args[0].lower() == "none":
            self.member = None
        elif self.tapped is not None and self.tapped["member_id"] == args[0]:
            self.member = self.tapped
        elif self.member is not None and self.member["member_id"] == args[0]:
            pass
        else:
            raise ConsoleError(f"member {args[0]} has not tapped at this till")
        self.out(f"-- sale {self.txn_id} is for "
                 f"{self.member['name'] if self.member else 'no member'}")
        if self.lines:
            self._send_basket()

    def _cmd_remove(self, args: list[str]) -> None:
        self._current()
        before = len(self.lines)
        self.lines = [x for x in self.lines if x["sku"] != args[0]]
        if len(self.lines) == before:
            raise ConsoleError(f"no line with sku {args[0]!r} in sale {self.txn_id}")
        self._send_basket()

    def _cmd_basket(self, args: list[str]) -> None:
        self._send_basket()

    def _cmd_redeem(self, args: list[str]) -> None:
        points = int(args[0])
        self.out(f"-> redeem {points} points on {self.txn_id}" if points else
                 f"-> cancel the redemption on {self.txn_id}")
        self._reply(self.till.redeem(self.txn_id, points))

    def _cmd_unredeem(self, args: list[str]) -> None:
        self._cmd_redeem(["0"])

    def _cmd_coupon(self, args: list[str]) -> None:
        code = args[0].upper()
        self.out(f"-> coupon {code} on {self.txn_id}")
        self._reply(self.till.present_coupon(self.txn_id, code))

    def _cmd_commit(self, args: list[str]) -> None:
        member_id = self.member["member_id"] if self.member else None
        if not self.committed and self.lines and member_id != self._sent_for:
            self._send_basket()  # a tap bound the sale since its last quote: quote it again
        self.out(f"-> commit {self.txn_id}")
        reply = self._reply(self.till.commit(self.txn_id))
        if reply["type"] == "points.awarded":
            self.committed = True  # 'commit' and 'status' still mean this sale until a line

    def _cmd_void(self, args: list[str]) -> None:
        txn = args[0] if args else self.txn_id
        self.out(f"-> void {txn}")
        self._reply(self.till.void(txn))

    def _cmd_refund(self, args: list[str]) -> None:
        txn, refund_id = args[0], args[1]
        lines = []
        for spec in args[2:]:
            sku, _, qty = spec.rpartition(":")
            if not sku:
                raise ConsoleError(f"refund line {spec!r} must be SKU:QTY")
            lines.append({"sku": sku, "qty": int(qty)})
        if not lines:
            raise ConsoleError("refund needs at least one SKU:QTY")
        self.out(f"-> refund {refund_id} of {txn}: {len(lines)} line(s)")
        self._reply(self.till.refund(txn, refund_id, lines))

    def _cmd_status(self, args: list[str]) -> None:
        txn = args[0] if args else self.txn_id
        self.out(f"-> status {txn}")
        self._reply(self.till.status(txn))

    def _cmd_sleep(self, args: list[str]) -> None:
        time.sleep(float(args[0]))

    def _cmd_wait(self, args: list[str]) -> None:
        mtype = next((a for a in args if not _is_number(a)), None)
        seconds = next((float(a) for a in args if _is_number(a)), 30.0)
        with self._cond:
            start = len(self._received)
            ok = self._cond.wait_for(
                lambda: any(mtype is None or m["type"] == mtype
                            for m in self._received[start:]), seconds)
        if not ok:
            raise ExpectationFailed(f"no {mtype or 'message'} from the terminal within "
                                    f"{seconds:g} s")

    def _cmd_expect(self, args: list[str]) -> None:
        if self.last is None:
            raise ExpectationFailed("expect: nothing received yet")
        for spec in args:
            key, sep, raw = spec.partition("=")
            if not sep:
                raise ConsoleError(f"expect takes FIELD=VALUE, not {spec!r}")
            try:
                want: Any = json.loads(raw)
            except ValueError:
                want = raw
            got = self.last.get(key)
            if got != want:
                raise ExpectationFailed(f"expected {key}={want!r}, got {got!r} in "
                                        f"{self.last.get('type')}")
        self.out("   ok")


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True
