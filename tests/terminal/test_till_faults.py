"""A terminal that never stops serving: crafted frames, store damage and a dead loop.

A real daemon in this process, its till link over a real pty pair, the till side written
byte for byte (:class:`RawTill`) so that it can send what no well-behaved till would.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pos_loyalty.config import TerminalConfig
from pos_loyalty.nfc.sim.cards import member_card
from pos_loyalty.nfc.sim.emulator import TagEmulator
from pos_loyalty.pos.messages import TxnStatus, TxnStatusRequest
from pos_loyalty.pos.pty import PtyBridge
from pos_loyalty.pos.testing import RawTill
from pos_loyalty.pos.till import REPLY_TIMEOUT
from pos_loyalty.terminal.daemon import TILL_ANSWER_S, TerminalDaemon
from pos_loyalty.terminal.demo_data import seed_demo_members
from pos_loyalty.terminal.sdnotify import Watchdog

NESTED = b"[" * 1020 + b"]" * 1020


@dataclass
class Rig:
    daemon: TerminalDaemon
    worker: threading.Thread
    till: RawTill
    rf: TagEmulator
    db: Path

    def tap(self, card_id: str) -> dict[str, Any]:
        self.rf.present(member_card(card_id))
        frame = self.till.expect(lambda f: f.kind == "D" and b"member.identified" in f.payload,
                                 20, "member.identified")
        self.rf.remove()
        doc: dict[str, Any] = json.loads(frame.payload)
        return doc

    def ask(self, **msg: Any) -> dict[str, Any]:
        return self.till.request(json.dumps({"pos_id": "POS-1", **msg}).encode())


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    db = tmp_path / "terminal.db"
    with TagEmulator() as rf, PtyBridge() as bridge:
        daemon = TerminalDaemon(TerminalConfig(
            data_dir=tmp_path, reader_path=f"udp:127.0.0.1:{rf.port}", debounce_s=0.0,
            serial_port=bridge.terminal_path, db_url=f"sqlite:///{db}", simulation=True))
        seed_demo_members(daemon.store)
        daemon.start()
        worker = threading.Thread(target=daemon.run, name="terminal")
        worker.start()
        try:
            with RawTill(bridge.till_path) as till:
                yield Rig(daemon, worker, till, rf, db)
        finally:
            daemon.stop()
            worker.join(timeout=20)
    assert not worker.is_alive()


BASKET = {"type": "basket.update", "txn_id": "T-1",
          "lines": [{"sku": "A", "qty": 2, "unit_price": 300, "category": "x"}]}


class TestCraftedFrames:
    def test_deeply_nested_hello_is_naked_and_the_link_still_comes_up(self, rig: Rig) -> None:
        """An H frame nesting 1,020 arrays gets a NAK (hello); a proper hello then works."""
        rig.till.write("H", NESTED)
        nak = rig.till.expect(lambda f: f.kind == "N", 10, "NAK")
        assert json.loads(nak.payload)["code"] == "hello"
        assert rig.till.hello().kind == "H"
        assert rig.ask(type="txn.status", txn_id="T-0")["state"] == "unknown"

    def test_deeply_nested_nak_leaves_the_link_serving(self, rig: Rig) -> None:
        """An N frame nesting 1,020 arrays is taken as a NAK; the next request is answered."""
        rig.till.hello()
        rig.till.write("N", NESTED)
        assert rig.ask(type="txn.status", txn_id="T-0")["state"] == "unknown"
        assert rig.daemon.endpoint.alive

    def test_deeply_nested_data_gets_an_error_answer(self, rig: Rig) -> None:
        """A D frame nesting 1,020 arrays is ACKed and answered invalid_message."""
        rig.till.hello()
        answer = rig.till.request(NESTED)
        assert (answer["type"], answer["code"]) == ("error", "invalid_message")
        assert "nested deeper" in answer["message"]
        assert rig.ask(type="txn.status", txn_id="T-0")["type"] == "txn.status"

    def test_huge_unit_price_is_refused_naming_the_field(self, rig: Rig) -> None:
        """unit_price 10^19 is refused where decoded; the commit that follows is no crash."""
        rig.till.hello()
        rig.tap("C-1001")
        huge = {**BASKET, "lines": [{"sku": "A", "qty": 1, "unit_price": 10**19,
                                     "category": "x"}]}
        answer = rig.ask(**huge)
        assert (answer["type"], answer["code"]) == ("error", "invalid_message")
        assert "lines[0].unit_price" in answer["message"]
        commit = rig.ask(type="txn.commit", txn_id="T-1")
        assert (commit["type"], commit["code"]) == ("error", "unknown_txn")
        assert rig.ask(**BASKET)["type"] == "quote"
        assert rig.ask(type="txn.commit", txn_id="T-1")["points"] == 6
        assert rig.worker.is_alive() and rig.daemon.healthy()


class TestFaultsWhileAnswering:
    def test_answer_beyond_the_tills_max_payload_is_an_error(self, rig: Rig) -> None:
        """A till announcing small frames (max_payload 200) gets a short error for a quote
        that does not fit them, not silence until its timer; the sale stays open and its
        status, which fits, is answered."""
        rig.till.hello(max_payload=200)
        reply = rig.ask(**BASKET)
        assert reply["type"] == "error" and reply["code"] == "internal", reply
        assert "quote answer is too large for this till's max_payload" in reply["message"]
        assert reply["txn_id"] == "T-1"
        status = rig.ask(type="txn.status", txn_id="T-1")
        assert status["type"] == "txn.status" and status["state"] == "open", status

    def test_missing_table_answers_store_and_the_repaired_commit_lands_once(
            self, rig: Rig) -> None:
        """The sales table gone under a commit: error store; put back, the retry lands once."""
        rig.till.hello()
        rig.tap("C-1002")
        assert rig.ask(**BASKET)["member_id"] == "M-1002"
        with sqlite3.connect(rig.db) as conn:
            conn.execute("ALTER TABLE sales RENAME TO sales_away")
        failed = rig.ask(type="txn.commit", txn_id="T-1")
        assert (failed["type"], failed["code"]) == ("error", "store")
        assert rig.ask(type="txn.status", txn_id="T-9")["code"] == "store"  # still serving
        with sqlite3.connect(rig.db) as conn:
            conn.execute("ALTER TABLE sales_away RENAME TO sales")
        first = rig.ask(type="txn.commit", txn_id="T-1")
        again = rig.ask(type="txn.commit", txn_id="T-1")
        assert (first["points"], first["balance_after"], first["repeated"]) == (6, 46, False)
        assert (again["balance_after"], again["repeated"]) == (46, True)
        assert rig.daemon.store.find_by_card("C-1002").balance == 46  # type: ignore[union-attr]

    def test_missing_tables_during_a_tap_and_a_basket(self, rig: Rig) -> None:
        """cards gone under a tap: refused with a reason; members gone under a basket:
        error store; each put back, the same requests succeed."""
        rig.till.hello()
        with sqlite3.connect(rig.db) as conn:
            conn.execute("ALTER TABLE cards RENAME TO cards_away")
        rig.rf.present(member_card("C-1001"))
        refused = rig.till.expect(lambda f: f.kind == "D" and b"card.refused" in f.payload,
                                  20, "card.refused")
        rig.rf.remove()
        assert b"store is unavailable" in refused.payload
        with sqlite3.connect(rig.db) as conn:
            conn.execute("ALTER TABLE cards_away RENAME TO cards")
        assert rig.tap("C-1001")["member_id"] == "M-1001"
        with sqlite3.connect(rig.db) as conn:
            conn.execute("ALTER TABLE members RENAME TO members_away")
        failed = rig.ask(**BASKET)
        assert (failed["type"], failed["code"]) == ("error", "store")
        with sqlite3.connect(rig.db) as conn:
            conn.execute("ALTER TABLE members_away RENAME TO members")
        quote = rig.ask(**BASKET)
        assert (quote["type"], quote["member_id"]) == ("quote", "M-1001")
        assert rig.ask(type="txn.commit", txn_id="T-1")["balance_after"] == 126

    def test_unexpected_fault_answers_internal_and_serves_on(
            self, rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
        """A bug in a handler is answered `error internal`, logged with its traceback."""
        def broken(msg: TxnStatusRequest) -> TxnStatus:
            raise ZeroDivisionError("a bug")

        rig.till.hello()
        service = rig.daemon.service
        service._on_status = broken  # type: ignore[method-assign]
        answer = rig.ask(type="txn.status", txn_id="T-1")
        assert (answer["type"], answer["code"], answer["txn_id"]) == ("error", "internal", "T-1")
        assert any(r.exc_info and r.exc_info[0] is ZeroDivisionError for r in caplog.records)
        del service._on_status
        assert rig.ask(type="txn.status", txn_id="T-1")["state"] == "unknown"


def _immutable(paths: list[Path], on: bool) -> None:
    """``chattr +i`` / ``-i``: the files become read-only for every process, root included,
    through descriptors already open too (a chmod binds neither root nor open files)."""
    subprocess.run(["chattr", "+i" if on else "-i", *map(str, paths)], check=True,
                   capture_output=True)


@pytest.fixture
def read_only(rig: Rig) -> Iterator[Callable[[bool], None]]:
    """Switch the running daemon's database (file and WAL) read-only and back; skipped with
    the reason where the immutable attribute cannot be set (no chattr, no
    CAP_LINUX_IMMUTABLE, a filesystem without it)."""
    files = [rig.db, rig.db.with_name(rig.db.name + "-wal")]
    try:
        _immutable(files, True)
        _immutable(files, False)
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        pytest.skip(f"cannot make a file read-only with chattr +i here "
                    f"(euid {os.geteuid()}): {exc} {detail.decode(errors='replace')}")
    state = {"on": False}

    def switch(on: bool) -> None:
        _immutable(files, on)
        state["on"] = on

    yield switch
    if state["on"]:
        _immutable(files, False)


class TestReadOnlyStore:
    def test_read_only_database_answers_store_and_the_repaired_commit_lands_once(
            self, rig: Rig, read_only: Callable[[bool], None]) -> None:
        """The database turns read-only under a running daemon: a tap still identifies (a
        read), a basket and a commit get `error store`, the daemon serves on; writable
        again, the repeated commit lands exactly once."""
        rig.till.hello()
        rig.tap("C-1002")
        assert rig.ask(**BASKET)["member_id"] == "M-1002"
        read_only(True)
        assert rig.tap("C-1002")["member_id"] == "M-1002"
        basket = rig.ask(**{**BASKET, "txn_id": "T-2"})
        assert (basket["type"], basket["code"]) == ("error", "store")
        failed = rig.ask(type="txn.commit", txn_id="T-1")
        assert (failed["type"], failed["code"]) == ("error", "store")
        assert rig.worker.is_alive()
        assert rig.ask(type="txn.status", txn_id="T-1")["state"] == "open"  # still serving
        read_only(False)
        first = rig.ask(type="txn.commit", txn_id="T-1")
        again = rig.ask(type="txn.commit", txn_id="T-1")
        assert (first["points"], first["balance_after"], first["repeated"]) == (6, 46, False)
        assert (again["balance_after"], again["repeated"]) == (46, True)
        assert [e.points for e in rig.daemon.store.ledger("M-1002")] == [6]
        assert rig.ask(**{**BASKET, "txn_id": "T-2"})["type"] == "quote"


class TestStuckWriter:
    def test_a_locked_store_is_answered_before_the_tills_reply_timer(self, rig: Rig) -> None:
        """Another writer holds the lock past the busy timeout: the commit's write gives up
        at the till-answer deadline, so the till gets `error store` within its own reply
        timer instead of timing out; released, the repeated commit lands once."""
        rig.till.hello()
        rig.tap("C-1002")
        assert rig.ask(**BASKET)["member_id"] == "M-1002"
        holder = sqlite3.connect(rig.db, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            began = time.monotonic()
            payload = json.dumps({"pos_id": "POS-1", "type": "txn.commit", "txn_id": "T-1"})
            failed = rig.till.request(payload.encode(), timeout=REPLY_TIMEOUT)
            waited = time.monotonic() - began
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert (failed["type"], failed["code"]) == ("error", "store")
        assert TILL_ANSWER_S <= waited < REPLY_TIMEOUT, waited
        first = rig.ask(type="txn.commit", txn_id="T-1")
        again = rig.ask(type="txn.commit", txn_id="T-1")
        assert (first["points"], first["repeated"], again["repeated"]) == (6, False, True)
        assert [e.points for e in rig.daemon.store.ledger("M-1002")] == [6]


class TestDeadLoop:
    def test_dead_serial_loop_stops_watchdog_and_the_daemon(self, tmp_path: Path) -> None:
        """When the serial thread dies, the watchdog pings stop and run() ends with a fault."""
        sock_path = str(tmp_path / "notify.sock")
        with TagEmulator() as rf, PtyBridge() as bridge, \
                socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(sock_path)
            sock.settimeout(0.5)
            daemon = TerminalDaemon(TerminalConfig(
                data_dir=tmp_path, reader_path=f"udp:127.0.0.1:{rf.port}",
                serial_port=bridge.terminal_path, simulation=True))
            daemon.watchdog = Watchdog(daemon.healthy, env={"NOTIFY_SOCKET": sock_path},
                                       interval=0.05)
            daemon.start()
            worker = threading.Thread(target=daemon.run, name="terminal")
            worker.start()
            try:
                assert sock.recv(64) == b"WATCHDOG=1"  # every loop alive: pinging

                def fault(now: float) -> None:
                    raise RuntimeError("a bug in the link")

                daemon.endpoint._link.tick = fault  # type: ignore[method-assign]
                worker.join(timeout=10)
                assert not worker.is_alive()
                assert daemon.fault == "the serial link loop stopped"
                assert not daemon.healthy()
                time.sleep(0.2)
                drained = []
                try:
                    while True:
                        drained.append(sock.recv(64))
                except TimeoutError:
                    pass
                assert len(drained) <= 3  # pings sent before the fault was seen, then none
                sock.settimeout(0.3)
                with pytest.raises(TimeoutError):
                    sock.recv(64)
            finally:
                daemon.stop()
                worker.join(timeout=10)
