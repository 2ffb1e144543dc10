"""The terminal daemon: reader thread, serial link, one worker that owns the store.

Till messages land on one queue and are handled in order by one thread, so the store sees a
single writer from the till side. A tap is answered by whichever thread is free: when the
worker is idle and nothing is queued, the reader thread answers it at once (a lookup, a
read, and the frame out), saving the hand-over to the worker, which on a loaded machine
costs more than the whole answer; otherwise it queues like a till message. One lock
(``_serving``) makes the two take turns, so the service's state is only ever touched by one
thread at a time.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy.exc import SQLAlchemyError

from pos_loyalty.config import TerminalConfig, check_card_keys
from pos_loyalty.errors import (
    LocalProtocolError,
    ReaderError,
    RulesError,
    SerialLinkError,
    StoreError,
)
from pos_loyalty.migrations import upgrade_terminal
from pos_loyalty.nfc.cardformat import CardTrust
from pos_loyalty.nfc.demo_keys import DEMO_PUBLIC_KEY, DEMO_SUN_KEYS
from pos_loyalty.nfc.events import TapEvent
from pos_loyalty.nfc.reader import Reader
from pos_loyalty.nfc.sun import CounterStore, SunKeyEntry
from pos_loyalty.nfc.sunuri import sun_key_entries, sun_uri_verifier
from pos_loyalty.pos.messages import (
    CardRefused,
    Error,
    Message,
    PointsAwarded,
    TerminalNotice,
    TerminalReply,
)
from pos_loyalty.pos.till import REPLY_TIMEOUT
from pos_loyalty.pos.transport import SerialEndpoint
from pos_loyalty.rules import DEFAULT_PROGRAM, in_timezone, load_program
from pos_loyalty.store import LocalStore
from pos_loyalty.store.sqlite import answer_by
from pos_loyalty.store.sun_counters import StoreCounters
from pos_loyalty.sync.online import OnlineRedeem
from pos_loyalty.sync.programs import ActiveProgram, ProgramFollower
from pos_loyalty.sync.worker import SyncWorker
from pos_loyalty.terminal.sdnotify import Watchdog, notify
from pos_loyalty.terminal.service import TerminalService, error_message

log = logging.getLogger(__name__)
EXPIRY_INTERVAL_S = 24 * 3600.0
EXPIRY_BATCH = 50  # members per step: a tap never waits behind more than a few ms of it

TILL_ANSWER_S = REPLY_TIMEOUT - 2.0
"""A till request's store writes stop waiting for the write lock this long after the worker
takes it up (the store's busy timeout, 5 s, is the till's whole reply timer): the till gets
``error store`` in time, with room left for the serial line and a tap queued before it."""
HEALTHY_WITHIN_S = 10.0  # a loop silent for longer is hung: stop pinging the watchdog
NO_TILL_AFTER_S = 10.0  # say so when no till has said hello this long after start


@dataclass(frozen=True)
class _Tap:
    event: TapEvent


@dataclass(frozen=True)
class _TillMessage:
    message: Message


_Work = _Tap | _TillMessage | None


class TapTiming(NamedTuple):
    read_ms: float  # nfcpy: tag discovered -> data read
    added_ms: float  # terminal: data read -> last byte of the till message written


SWITCH_INTERVAL_S = 0.0005


def tune_for_latency() -> None:
    """Let a waiting thread take the GIL sooner (CPython's default is 5 ms).

    The daemon's worker, reader, serial and sync threads mostly wait on I/O; with the default
    interval a tap could wait up to 5 ms for the GIL behind a busy thread, more than the whole
    tap budget. bench/bench_tap_e2e.py measures the terminal-added latency with it.
    """
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def card_trust(config: TerminalConfig, sun_counters: CounterStore) -> CardTrust:
    """What this terminal trusts: the configured issuer and SUN keys, nothing by default.

    ConfigError (naming ``cards.issuer_keys``) when no key is configured. The published demo
    keys are trusted only in an explicit simulation (``[cards] simulation`` or
    ``--simulation``). SUN read counters are checked and recorded in ``sun_counters``.
    """
    check_card_keys(config)
    issuers = [bytes.fromhex(k) for k in config.issuer_keys]
    sun: list[SunKeyEntry] = []
    if config.sun_keys is not None:
        sun.extend(sun_key_entries(config.sun_keys))
    if config.simulation:
        log.warning("simulation: trusting the published demo card keys; never in a shop")
        issuers.append(DEMO_PUBLIC_KEY)
        sun.extend(DEMO_SUN_KEYS)
    verifiers = (sun_uri_verifier(sun, sun_counters),) if sun else ()
    return CardTrust(tuple(issuers), accept_legacy_uid=config.accept_legacy_uid,
                     uri_verifiers=verifiers)


class TerminalDaemon:
    """Wires reader, store, rules and till link; ``run()`` blocks until ``stop()``."""

    def __init__(self, config: TerminalConfig) -> None:
        self.config = config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        program = load_program(config.program_file) if config.program_file else DEFAULT_PROGRAM
        program = in_timezone(program, config.timezone)  # the shop's own zone wins
        upgrade_terminal(config.resolved_db_url)  # an older store gets the newest schema
        self.store = LocalStore(config.resolved_db_url, terminal_id=config.terminal_id)
        identity = self.store.sync_identity()
        # enrolled: the id central assigned; before enrollment, the configured one
        self.terminal_id = identity.terminal_id if identity.credential else config.terminal_id
        self.sync: SyncWorker | None = None
        self.online: OnlineRedeem | None = None
        if identity.server_url and identity.credential:  # enrolled with a central server
            self.sync = SyncWorker(self.store, identity.server_url, identity.credential,
                                   config.sync_interval_s, ca_file=config.sync_ca_file,
                                   status=self._status)
            # redemptions are confirmed by central while it answers within 1 s
            self.online = OnlineRedeem(identity.server_url, identity.credential,
                                       ca_file=config.sync_ca_file)
        self.service = TerminalService(self.store, program,
                                       legacy_uid_redeem=config.legacy_uid_redeem,
                                       phone=config.phone, ca_file=config.sync_ca_file,
                                       online=self.online)
        # the program central published for this store, once pulled, replaces the file's
        self._next_follow = 0.0
        self.programs = ProgramFollower(self.store, ActiveProgram(
            program, None, "file" if config.program_file else "built-in"),
            timezone=config.timezone)
        self._follow_program()
        log.info("program %s", self.programs.current.label)
        self._work: queue.Queue[_Work] = queue.Queue()
        self._serving = threading.Lock()  # held while the service is being used
        self._worker_up = False  # run() is serving: a free worker's taps may go inline
        self._stop = threading.Event()
        self._expiry_todo: deque[str] = deque()
        self._expiry_now = self.service.clock()
        # per tap: nfcpy read time and the terminal-added time (read done -> last byte of
        # the till message written), ms; bench/bench_tap_e2e.py reports them (P1, P2)
        self.tap_timings: deque[TapTiming] = deque(maxlen=100_000)
        self.endpoint = SerialEndpoint(
            config.serial_port, self._from_till, role="terminal", baudrate=config.baudrate,
            peer_id=self.terminal_id, on_link_state=self._till_link,
        )
        self._till_since: float | None = None  # when the link went down (or we started)
        self.fault: str | None = None
        """Why the daemon stopped on its own (a loop died, the worker failed); None after
        a requested stop. ``pos-loyalty run`` exits non-zero when it is set."""
        self._stop_requested = False
        self.sun_counters = StoreCounters(config.resolved_db_url)
        self.reader = Reader(config.reader_path, trust=card_trust(config, self.sun_counters),
                             debounce_s=config.debounce_s)
        self._reader_thread = threading.Thread(
            target=self._read_loop, name="nfc-reader", daemon=True)
        self._worker_beat = time.monotonic()
        self.watchdog = Watchdog(self.healthy)

    # -- inputs (called from other threads) ------------------------------------------------

    def _from_till(self, message: Message) -> None:
        self._work.put(_TillMessage(message))

    def _from_reader(self, tap: TapEvent) -> None:
        """Reader thread: answer the tap here if the worker is free and nothing waits for
        it (no hand-over), else queue it behind what is waiting."""
        if self._worker_up and self._work.empty() and self._serving.acquire(blocking=False):
            try:
                if self._worker_up and not self._stop.is_set():
                    self._handle(_Tap(tap))
                    self._follow_program()  # as the worker does after each item
                    return
            finally:
                self._serving.release()
        self._work.put(_Tap(tap))

    def _read_loop(self) -> None:
        try:
            self.reader.run(self._from_reader, self._stop)
        except ReaderError as exc:
            log.error("NFC reader stopped: %s", exc)
        except Exception:
            log.exception("NFC reader loop failed")

    def _till_link(self, up: bool) -> None:
        """Serial thread: the till said hello, or went away."""
        if up:
            peer = self.endpoint.peer
            log.info("till connected on %s (%s)", self.endpoint.url,
                     peer.id if peer is not None and peer.id else "no id")
            self._till_since = None
        else:
            if not self._stop.is_set():
                log.warning("till on %s disconnected", self.endpoint.url)
            self._till_since = time.monotonic()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Open the till link and start reading; raises SerialLinkError/ReaderError early."""
        self._till_since = time.monotonic()
        self.endpoint.start()
        self._reader_thread.start()
        if self.sync is not None:
            self.sync.start()
        notify("READY=1")  # systemd (Type=notify); nothing happens outside systemd
        self.watchdog.start()

    def dead_loop(self) -> str | None:
        """The name of a loop whose thread has ended, or None while all of them run."""
        if not self._reader_thread.is_alive():
            return "NFC reader"
        if not self.endpoint.alive:
            return "serial link"
        if self.sync is not None and not self.sync.running:
            return "sync"
        return None

    def healthy(self) -> bool:
        """Every loop is alive and going round: what the systemd watchdog pings depend on."""
        return (
            self.fault is None
            and self.dead_loop() is None
            and self.reader.heartbeat_age() < HEALTHY_WITHIN_S
            and self.endpoint.heartbeat_age() < HEALTHY_WITHIN_S
            and time.monotonic() - self._worker_beat < HEALTHY_WITHIN_S
        )

    def stop(self) -> None:
        """Ask run() to finish (a signal, a test); a stop asked for is not a fault."""
        self._stop_requested = True
        self._stop.set()
        self._work.put(None)

    def run(self) -> None:
        """Handle taps and till messages until ``stop()``; then close everything.

        Points expiry runs on this thread too (the store's single writer): at start, then
        once a day, a few members at a time whenever no tap or till request is waiting.
        """
        next_expiry = time.monotonic()
        self._worker_up = True
        try:
            while not self._stop.is_set():
                self._worker_beat = time.monotonic()
                dead = self.dead_loop()
                if dead is not None and not self._stop.is_set():
                    self.fault = f"the {dead} loop stopped"
                    log.critical("%s: exiting so that the service is restarted", self.fault)
                    break
                self._say_if_no_till()
                if self._worker_beat >= next_expiry:
                    with self._serving:
                        self._plan_expiry()
                    next_expiry = time.monotonic() + EXPIRY_INTERVAL_S
                try:
                    if self._expiry_todo:
                        item = self._work.get_nowait()
                    else:
                        item = self._work.get(
                            timeout=min(1.0, max(0.0, next_expiry - time.monotonic())))
                except queue.Empty:
                    with self._serving:
                        self._expire_batch()
                        self._follow_program()
                    continue
                if item is None:
                    break
                with self._serving:
                    try:
                        self._handle(item)
                    except Exception:  # the reply is answered or logged; keep serving
                        log.exception("fault after answering a %s",
                                      "tap" if isinstance(item, _Tap) else "till request")
                    self._follow_program()
        except BaseException as exc:
            self.fault = f"the terminal worker failed: {exc!r}"
            log.critical("%s", self.fault, exc_info=True)
            raise
        finally:
            with self._serving:  # an inline tap finishes before anything is closed
                self._worker_up = False
            if self.fault is None and not self._stop_requested:
                self.fault = "the terminal worker stopped"
            self._stop.set()
            self.watchdog.stop()
            if self.sync is not None:
                self.sync.stop()
            if self.online is not None:
                self.online.close()
            self._reader_thread.join(timeout=5)
            self.endpoint.close()
            self.service.coupons.close()
            self.sun_counters.close()
            self.store.close()

    def _follow_program(self) -> None:
        """Between sales only: take up a program central published for this store."""
        if time.monotonic() < self._next_follow:
            return
        self._next_follow = time.monotonic() + 1.0
        try:
            self.programs.follow(self.service, busy=bool(self.service.session.txns))
        except StoreError as exc:  # tried again on the next idle second
            log.error("pulled program not read: %s", exc)

    def _status(self) -> dict[str, Any]:
        """The daemon's state for the heartbeat (read from the sync thread)."""
        return {"program_name": self.programs.current.name,
                "program_version": self.programs.current.version,
                "reader_state": "ok" if self._reader_thread.is_alive()
                and self.reader.heartbeat_age() < HEALTHY_WITHIN_S else "stalled",
                "till_state": "up" if self.endpoint.link_up else "down"}

    def _plan_expiry(self) -> None:
        try:
            self._expiry_todo = deque(self.store.members_with_lots())
            self._expiry_now = self.service.clock()
        except StoreError as exc:  # retried tomorrow; sales go on meanwhile
            log.error("points expiry could not start: %s", exc)

    def _expire_batch(self) -> None:
        batch = [self._expiry_todo.popleft()
                 for _ in range(min(EXPIRY_BATCH, len(self._expiry_todo)))]
        if not batch:
            return
        try:
            self.service.expire_members(batch, self._expiry_now)
        except (StoreError, RulesError) as exc:
            log.error("points expiry failed for %s..: %s", batch[0], exc)

    def _say_if_no_till(self) -> None:
        since = self._till_since
        if since is not None and time.monotonic() - since >= NO_TILL_AFTER_S:
            self._till_since = None  # once per wait
            log.warning("no till on %s yet: check the cable and the till's serial settings "
                        "(%d baud 8N1)", self.endpoint.url, self.endpoint.baudrate)

    def _answer_tap(self, tap: TapEvent) -> TerminalNotice:
        try:
            return self.service.on_tap(tap)
        except Exception:  # a fault on our side: the cashier can tap again, we serve on
            log.exception("tap of %s failed", tap.card_id or tap.uid)
            return CardRefused(tap.uid, "the terminal failed reading this card: please tap "
                               "again")

    def _answer(self, message: Message) -> TerminalReply | None:
        """The reply to one till request, whatever goes wrong while making it.

        The service answers the faults it expects (store errors, refusals); anything else is
        logged with its traceback and answered ``store`` (a database error the store did not
        translate) or ``internal``, and the next request is served as usual.
        """
        try:
            with answer_by(TILL_ANSWER_S):
                return self.service.on_message(message)
        except (SQLAlchemyError, sqlite3.Error) as exc:
            log.exception("store fault on %s: %s", message.TYPE, exc)
            return error_message("store", "the loyalty store is unavailable; sale not "
                                 "recorded for points, please retry", message)
        except Exception:
            log.exception("fault while answering %s", message.TYPE)
            return error_message("internal", "the terminal could not answer this request "
                                 "(logged there); please retry", message)

    def _handle(self, item: _Tap | _TillMessage) -> None:
        if isinstance(item, _Tap):
            notice = self._answer_tap(item.event)
            self._send(notice)
            if item.event.read_done:
                added = (time.perf_counter() - item.event.read_done) * 1000
                self.tap_timings.append(TapTiming(item.event.read_ms, added))
            self.service.log_tap(item.event, notice)  # after the reply: off the tap's path
            return
        reply = self._answer(item.message)
        if reply is not None:
            self._send(reply)
        if self.sync is not None and isinstance(reply, PointsAwarded):
            self.sync.trigger()  # push the new ledger events soon, off the till's path

    def _send(self, reply: Message) -> None:
        """Write a reply to the till; nothing the link raises may stop the worker.

        The ledger is already written when a reply is lost: the till recovers it with
        txn.status or a repeated (idempotent) request once it is back. (A reply that breaks
        the schema cannot exist: message classes validate when they are made, and a fault
        there is answered ``internal`` by :meth:`_answer`.) A reply larger than the frames
        the till announced in its hello is answered with a short ``error internal`` instead,
        so the till hears why rather than waiting out its timer (a tap's notice is logged).
        """
        try:
            self.endpoint.send(reply)  # returns once the frame is written to the port
        except SerialLinkError as exc:  # the till has been away long enough to fill the queue
            log.warning("till unreachable, %s not sent: %s", reply.TYPE, exc)
        except LocalProtocolError as exc:  # beyond the till's max_payload
            log.error("%s not sent to the till: %s", reply.TYPE, exc)
            if getattr(reply, "txn_id", None) is not None and not isinstance(reply, Error):
                self._send(error_message("internal", f"the {reply.TYPE} answer is too large "
                                         "for this till's max_payload", reply))
