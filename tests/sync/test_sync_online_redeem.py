"""Online redemption: central decides while it answers in time, the offline policy otherwise.

Every sale goes through TerminalService (what `pos-loyalty run` runs) to a live uvicorn
central over real HTTP, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from pos_loyalty.config import TerminalConfig
from pos_loyalty.nfc.sim.cards import member_card
from pos_loyalty.nfc.sim.emulator import TagEmulator
from pos_loyalty.pos.pty import PtyBridge
from pos_loyalty.pos.till import REPLY_TIMEOUT, SimulatedTill
from pos_loyalty.server.central import EventIn, utcnow
from pos_loyalty.server.checks import EventPolicy
from pos_loyalty.server.db import Refused
from pos_loyalty.server.ledger import holds
from pos_loyalty.server.ledger.queries import confirmed_online
from pos_loyalty.server.terminals.queries import TerminalAuth
from pos_loyalty.store.central_models import Balance, RedeemHold
from pos_loyalty.store.local import LocalStore
from pos_loyalty.sync.client import SyncClient, run_sync
from pos_loyalty.sync.online import OnlineRedeem
from pos_loyalty.sync.policy import OfflinePolicy
from pos_loyalty.terminal.daemon import TerminalDaemon
from pos_loyalty.terminal.service import TerminalService
from tests.conftest import Central, TerminalFactory, TerminalHandle
from tests.ports import ReservedPort
from tests.tillsales import REDEEM_ONLY, REDEEM_ONLY_TOML, ask, member_tap, ring_up, tap

POLICY = OfflinePolicy(member_cap=500, terminal_budget=5_000, max_balance_age_s=3600)
BASKET = 100_000  # 1,000.00: pays for any redemption these tests ask for


def synced(t: TerminalHandle) -> None:
    with SyncClient(t.server_url, t.credential) as c:
        report = run_sync(t.local, c)
    assert report.ok, report.error


def till(local: LocalStore, online: OnlineRedeem | None,
         now: datetime | None = None) -> TerminalService:
    when = now or utcnow()
    return TerminalService(local, REDEEM_ONLY, clock=lambda: when, offline_policy=POLICY,
                           online=online)


def open_sale(service: TerminalService, card: str, pos_id: str, txn_id: str) -> None:
    assert tap(service, member_tap(card))["type"] == "member.identified"
    got = ask(service, {"type": "basket.update", "pos_id": pos_id, "txn_id": txn_id,
                        "lines": [{"sku": "ITEM", "qty": 1, "unit_price": BASKET,
                                   "category": "misc"}]})
    assert got["type"] == "quote", got


def redeem(service: TerminalService, pos_id: str, txn_id: str, points: int) -> dict[str, Any]:
    return ask(service, {"type": "redeem.request", "pos_id": pos_id, "txn_id": txn_id,
                         "points": points})


def commit(service: TerminalService, pos_id: str, txn_id: str) -> dict[str, Any]:
    return ask(service, {"type": "txn.commit", "pos_id": pos_id, "txn_id": txn_id})


def hold_rows(central: Central) -> list[tuple[str, str, int, str]]:
    with central.store.read() as conn:
        return [(r.hold_id, r.member_id, int(r.points), r.status) for r in conn.execute(
            select(RedeemHold.hold_id, RedeemHold.member_id, RedeemHold.points,
                   RedeemHold.status).order_by(RedeemHold.created_at, RedeemHold.hold_id))]


@pytest.fixture
def online_for() -> Iterator[Any]:
    made: list[OnlineRedeem] = []

    # tests that expect central's answer wait generously (a loaded machine can take over
    # the daemon's 1 s); the deadline tests pass their own
    def make(t: TerminalHandle, url: str | None = None, deadline_s: float = 10.0) -> OnlineRedeem:
        o = OnlineRedeem(url or t.server_url, t.credential, deadline_s=deadline_s)
        made.append(o)
        return o

    yield make
    for o in made:
        o.close()


@pytest.fixture
def member_2000(central: Central) -> str:
    central.store.add_member("M1", "Ann", card_id="C1")
    central.store.adjust_points("M1", 2000, "opening")
    return "M1"


class TestOnlineRedemption:
    def test_central_confirms_beyond_the_offline_cap(
            self, central: Central, terminals: TerminalFactory, member_2000: str,
            online_for: Any) -> None:
        """2,000 points at central: 1,500 are redeemed online, past the 500 offline cap;
        the event says online, and central applies it once, without the caps."""
        t = terminals()
        synced(t)
        service = till(t.local, online_for(t))
        done = ring_up(service, card_id="C1", pos_id="P1", txn_id="1", total=BASKET,
                       redeem=1500)
        assert done["type"] == "points.awarded", done
        assert done["points"] == -1500 and done["balance_after"] == 500
        [event] = t.local.ledger("M1")[-1:]
        assert (event.kind, event.points, event.offline) == ("redeem", -1500, False)
        [(hold_id, member, points, status)] = hold_rows(central)
        assert (hold_id, member, points, status) == (event.event_id, "M1", 1500, "held")
        facts = t.local.redeem_facts("M1")
        assert facts is not None and facts.member_pending == 0  # not an offline risk
        synced(t)
        synced(t)  # a second push changes nothing
        assert central.store.balance("M1") == 500
        assert hold_rows(central)[0][3] == "used"
        assert central.store.held() == [] and central.store.reconcile().overdrafts == []
        again = commit(service, "P1", "1")
        assert again["repeated"] and again["points"] == -1500

    def test_two_terminals_racing_for_the_same_points_one_wins(
            self, central: Central, terminals: TerminalFactory, member_2000: str,
            online_for: Any) -> None:
        """Both ask for 1,500 of 2,000 points at once: central confirms exactly one."""
        t1, t2 = terminals(), terminals()
        services = []
        for i, t in enumerate((t1, t2)):
            synced(t)
            s = till(t.local, online_for(t))
            open_sale(s, "C1", f"P{i}", "1")
            services.append(s)
        barrier = threading.Barrier(2)
        answers: dict[int, dict[str, Any]] = {}

        def ask_redeem(i: int) -> None:
            barrier.wait()
            answers[i] = redeem(services[i], f"P{i}", "1", 1500)

        threads = [threading.Thread(target=ask_redeem, args=(i,)) for i in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        kinds = sorted(a["type"] for a in answers.values())
        assert kinds == ["error", "quote"], answers
        winner = next(i for i, a in answers.items() if a["type"] == "quote")
        loser = 1 - winner
        assert "500 points to spend" in answers[loser]["message"]
        assert "central" in answers[loser]["message"]
        for i in (winner, loser):  # the loser's sale goes on without a redemption
            assert commit(services[i], f"P{i}", "1")["type"] == "points.awarded"
        for t in (t1, t2):
            synced(t)
        assert central.store.balance("M1") == 500
        assert [r[3] for r in hold_rows(central)] == ["used"]

    def test_a_void_gives_the_points_back(
            self, central: Central, terminals: TerminalFactory, member_2000: str,
            online_for: Any) -> None:
        """A confirmed redemption on a voided sale is released: another terminal can
        redeem those points at once."""
        t1, t2 = terminals(), terminals()
        s1, s2 = till(t1.local, online_for(t1)), till(t2.local, online_for(t2))
        for t in (t1, t2):
            synced(t)
        open_sale(s1, "C1", "P1", "1")
        assert redeem(s1, "P1", "1", 1500)["type"] == "quote"
        open_sale(s2, "C1", "P2", "1")
        assert redeem(s2, "P2", "1", 1500)["type"] == "error"
        voided = ask(s1, {"type": "txn.void", "pos_id": "P1", "txn_id": "1"})
        assert voided["state"] == "voided"
        deadline = time.monotonic() + 10  # the release goes in the background
        while hold_rows(central)[0][3] != "released" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert redeem(s2, "P2", "1", 1500)["type"] == "quote"
        assert commit(s2, "P2", "1")["points"] == -1500
        synced(t2)
        assert central.store.balance("M1") == 500

    def test_asking_again_replaces_the_sales_hold_and_a_refusal_keeps_it(
            self, central: Central, terminals: TerminalFactory, member_2000: str,
            online_for: Any) -> None:
        """A second request on the same sale is judged without its own earlier hold, which
        central releases when the new one is confirmed; a refused request changes nothing."""
        t = terminals()
        synced(t)
        service = till(t.local, online_for(t))
        open_sale(service, "C1", "P1", "1")
        assert redeem(service, "P1", "1", 1500)["type"] == "quote"
        central.store.adjust_points("M1", -400, "store IT")  # 1,600 left at central
        refused = redeem(service, "P1", "1", 2000)
        assert refused["type"] == "error" and "1600 points to spend" in refused["message"]
        assert [(r[2], r[3]) for r in hold_rows(central)] == [(1500, "held")]
        assert redeem(service, "P1", "1", 1600)["type"] == "quote"  # not 1500 + 1600
        assert [(r[2], r[3]) for r in hold_rows(central)] == [(1500, "released"),
                                                             (1600, "held")]
        assert commit(service, "P1", "1")["points"] == -1600
        synced(t)
        assert central.store.balance("M1") == 0
        assert [r[3] for r in hold_rows(central)] == ["released", "used"]

    def test_central_gone_after_a_confirmation_keeps_it(
            self, central: Central, terminals: TerminalFactory, member_2000: str,
            online_for: Any, reserved_port: ReservedPort) -> None:
        """Confirmed online, then central is unreachable: a larger request is refused by
        the offline cap, and the sale commits the redemption central confirmed."""
        t = terminals()
        synced(t)
        service = till(t.local, online_for(t))
        open_sale(service, "C1", "P1", "1")
        assert redeem(service, "P1", "1", 1500)["type"] == "quote"
        service.online = online_for(t, url=reserved_port.url)
        refused = redeem(service, "P1", "1", 1600)
        assert "offline redemption limit" in refused["message"]
        done = commit(service, "P1", "1")
        assert done["points"] == -1500
        assert not t.local.ledger("M1")[-1].offline
        synced(t)
        assert central.store.balance("M1") == 500
        assert [r[3] for r in hold_rows(central)] == ["used"]

    def test_a_restart_keeps_the_confirmation(
            self, central: Central, terminals: TerminalFactory, member_2000: str,
            online_for: Any) -> None:
        """An open sale restored after a restart commits its confirmed redemption online."""
        t = terminals()
        synced(t)
        first = till(t.local, online_for(t))
        open_sale(first, "C1", "P1", "1")
        assert redeem(first, "P1", "1", 1500)["type"] == "quote"
        later = till(LocalStore(t.local.url), online_for(t))  # the daemon started again
        try:
            done = commit(later, "P1", "1")
            assert done["points"] == -1500, done
            event = later.store.ledger("M1")[-1]
            assert not event.offline and event.event_id == hold_rows(central)[0][0]
        finally:
            later.store.close()
        synced(t)
        assert central.store.balance("M1") == 500


class TestDaemon:
    def test_the_running_terminal_redeems_online_over_the_till_link(
            self, central: Central, terminals: TerminalFactory, member_2000: str,
            tmp_path: Path) -> None:
        """What `pos-loyalty run` wires: an enrolled daemon, nfcpy over udp, the reference
        till over a pty: 1,500 points redeemed past the 500 offline cap, once."""
        t = terminals("S1", name="terminal")
        synced(t)
        db = str(t.local.engine.url)
        t.local.close()
        program = tmp_path / "program.toml"
        program.write_text(REDEEM_ONLY_TOML)
        with TagEmulator() as rf, PtyBridge() as bridge:
            daemon = TerminalDaemon(TerminalConfig(
                data_dir=tmp_path, reader_path=f"udp:127.0.0.1:{rf.port}", debounce_s=0.0,
                serial_port=bridge.terminal_path, db_url=db, simulation=True,
                program_file=str(program), sync_interval_s=0.3))
            daemon.start()
            worker = threading.Thread(target=daemon.run, name="terminal")
            worker.start()
            try:
                with SimulatedTill(bridge.till_path, pos_id="POS-1") as pos:
                    pos.wait_link_up(timeout=20)
                    rf.present(member_card("C1"))
                    told = pos.next_message({"member.identified"}, timeout=20)
                    rf.remove()
                    assert told["member_id"] == "M1"
                    pos.send_basket("T1", [{"sku": "A", "qty": 1, "unit_price": BASKET,
                                            "category": "x"}])
                    quoted = pos.redeem("T1", 1500)
                    assert quoted["type"] == "quote", quoted
                    done = pos.commit("T1")
                    assert (done["points"], done["balance_after"]) == (-1500, 500), done
                deadline = time.monotonic() + 20  # the sync worker pushes it
                while central.store.balance("M1") != 500 and time.monotonic() < deadline:
                    time.sleep(0.1)
            finally:
                daemon.stop()
                worker.join(timeout=20)
        assert central.store.balance("M1") == 500
        assert [r[2:] for r in hold_rows(central)] == [(1500, "used")]


class TestFallback:
    def test_central_down_the_offline_cap_applies(
            self, central: Central, terminals: TerminalFactory, member_2000: str,
            online_for: Any, reserved_port: ReservedPort) -> None:
        """Nobody answers on central's address: the offline policy decides, as before."""
        t = terminals()
        synced(t)
        service = till(t.local, online_for(t, url=reserved_port.url))
        refused = ring_up(service, card_id="C1", pos_id="P1", txn_id="1", total=BASKET,
                          redeem=1500)
        assert refused["type"] == "error" and "offline redemption limit" in refused["message"]
        done = ring_up(service, card_id="C1", pos_id="P1", txn_id="2", total=BASKET,
                       redeem=400)
        assert done["points"] == -400
        event = t.local.ledger("M1")[-1]
        assert (event.points, event.offline) == (-400, True)
        assert hold_rows(central) == []
        synced(t)
        assert central.store.balance("M1") == 1600

    def test_central_slow_falls_back_within_the_tills_timer(
            self, central: Central, terminals: TerminalFactory, member_2000: str,
            online_for: Any) -> None:
        """Central accepts the connection and never answers: the redemption is decided
        offline after the deadline, well before the till's reply timer runs out."""
        t = terminals()
        synced(t)
        hung = socket.create_server(("127.0.0.1", 0))
        accepted: list[socket.socket] = []
        stop = threading.Event()

        def accept() -> None:
            hung.settimeout(0.1)
            while not stop.is_set():
                try:
                    accepted.append(hung.accept()[0])  # read nothing, answer nothing
                except TimeoutError:
                    continue

        server = threading.Thread(target=accept, daemon=True)
        server.start()
        try:
            port = hung.getsockname()[1]
            service = till(t.local, online_for(t, url=f"http://127.0.0.1:{port}",
                                               deadline_s=0.5))
            open_sale(service, "C1", "P1", "1")
            began = time.monotonic()
            refused = redeem(service, "P1", "1", 1500)
            waited = time.monotonic() - began
            assert refused["type"] == "error" and "offline" in refused["message"]
            assert 0.5 <= waited < REPLY_TIMEOUT, waited
            assert redeem(service, "P1", "1", 300)["type"] == "quote"
            assert commit(service, "P1", "1")["points"] == -300
            assert t.local.ledger("M1")[-1].offline
        finally:
            stop.set()
            server.join()
            for c in accepted:
                c.close()
            hung.close()


    def test_a_confirmation_that_comes_too_late_is_released(
            self, central: Central, terminals: TerminalFactory, member_2000: str,
            online_for: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        """Central confirms after the deadline: the sale was decided offline, and the
        hold central made is given back as soon as its answer arrives."""
        t = terminals()
        synced(t)
        real = holds.confirm

        def slow(*args: Any, **kw: Any) -> holds.HoldAnswer:
            time.sleep(1.0)
            return real(*args, **kw)

        monkeypatch.setattr(holds, "confirm", slow)  # the server runs in this process
        service = till(t.local, online_for(t, deadline_s=0.3))
        open_sale(service, "C1", "P1", "1")
        assert redeem(service, "P1", "1", 400)["type"] == "quote"  # offline, within the cap
        deadline = time.monotonic() + 10
        while not [r for r in hold_rows(central) if r[3] == "released"]:
            assert time.monotonic() < deadline, hold_rows(central)
            time.sleep(0.05)
        assert commit(service, "P1", "1")["points"] == -400
        assert t.local.ledger("M1")[-1].offline
        synced(t)
        assert central.store.balance("M1") == 1600


class TestCentralBounds:
    def test_no_hold_beyond_the_balance_nor_for_an_unknown_member(
            self, central: Central, terminals: TerminalFactory, member_2000: str) -> None:
        """A terminal credential (a stolen one too) holds at most what the member has."""
        t = terminals()
        auth = TerminalAuth(t.terminal_id, "S1")
        over = holds.confirm(central.store, auth, hold_id="h1", member_id="M1", points=2001,
                             txn_ref="x")
        assert not over.confirmed and "2000 points to spend" in over.reason
        ghost = holds.confirm(central.store, auth, hold_id="h2", member_id="M9", points=1,
                              txn_ref="x")
        assert not ghost.confirmed and "unknown" in ghost.reason
        ok = holds.confirm(central.store, auth, hold_id="h3", member_id="M1", points=2000,
                           txn_ref="x")
        assert ok.confirmed and ok.available == 0
        assert holds.confirm(central.store, auth, hold_id="h3", member_id="M1",
                             points=2000, txn_ref="x").confirmed  # asked again: same answer
        assert not holds.confirm(central.store, auth, hold_id="h4", member_id="M1",
                                 points=1, txn_ref="x").confirmed

    @pytest.mark.parametrize("central_url", ["postgresql"], indirect=True)
    def test_one_hold_id_asked_twice_at_once_is_one_hold(
            self, central: Central, terminals: TerminalFactory, member_2000: str) -> None:
        """Requests with one hold id wait on the balance rows together: the same request
        twice (a retry) is confirmed twice as one hold; the id asked for two members is
        one hold and a 409, not a database error."""
        central.store.add_member("M2", "Bo", card_id="C2")
        central.store.adjust_points("M2", 2000, "opening")
        auth = TerminalAuth(terminals().terminal_id, "S1")

        def at_once(hold_id: str, members: list[str]) -> list[holds.HoldAnswer | Exception]:
            got: dict[int, holds.HoldAnswer | Exception] = {}

            def ask_hold(i: int) -> None:
                try:
                    got[i] = holds.confirm(central.store, auth, hold_id=hold_id,
                                           member_id=members[i], points=1500, txn_ref="x")
                except Exception as exc:  # the test reports what it was
                    got[i] = exc

            threads = [threading.Thread(target=ask_hold, args=(i,))
                       for i in range(len(members))]
            with central.store.engine.connect() as blocker, blocker.begin():
                blocker.execute(select(Balance.balance).where(
                    Balance.member_id.in_(members)).with_for_update())
                for th in threads:
                    th.start()
                deadline = time.monotonic() + 60
                while _waiting_on_locks(central) < len(members):
                    assert time.monotonic() < deadline, "the requests never reached the lock"
                    time.sleep(0.02)
            for th in threads:
                th.join(timeout=60)
            return [got[i] for i in range(len(members))]

        retried = at_once("h1", ["M1", "M1"])
        assert all(isinstance(a, holds.HoldAnswer) and a.confirmed for a in retried), retried
        assert hold_rows(central) == [("h1", "M1", 1500, "held")]
        assert holds.release(central.store, auth, "h1")
        forged = at_once("h2", ["M1", "M2"])
        [(_, winner, _, _)] = [r for r in hold_rows(central) if r[0] == "h2"]
        ok, lost = forged if winner == "M1" else forged[::-1]
        assert isinstance(ok, holds.HoldAnswer) and ok.confirmed, forged
        assert isinstance(lost, Refused) and lost.status == 409, forged

    def test_points_earned_only_at_other_stores_are_not_held_here(
            self, central: Central, terminals: TerminalFactory, member_2000: str) -> None:
        """Where a store does not let its tills debit points earned elsewhere, a member who
        shopped only at S2 gets no hold at S1, and one at S2."""
        s1, s2 = terminals("S1"), terminals("S2")
        a1, a2 = TerminalAuth(s1.terminal_id, "S1"), TerminalAuth(s2.terminal_id, "S2")
        earn = EventIn("e-1", s2.terminal_id, 1, "M1", "earn", 10, "P/1", utcnow(), False)
        assert central.store.push(a2, [earn]).results[0].status == "stored"
        assert central.store.balance("M1") == 2010
        here = holds.confirm(central.store, a1, hold_id="h1", member_id="M1", points=100,
                             txn_ref="x")
        assert not here.confirmed and "other stores" in here.reason
        assert holds.confirm(central.store, a2, hold_id="h2", member_id="M1", points=100,
                             txn_ref="x").confirmed

    def test_holds_are_deleted_30_days_after_they_ran_out(
            self, central: Central, terminals: TerminalFactory, member_2000: str) -> None:
        """The member's next confirmation deletes their holds that ran out more than
        HOLD_KEPT ago, used or not; a younger one, and other members' holds, stay."""
        central.store.add_member("M2", "Bo", card_id="C2")
        central.store.adjust_points("M2", 100, "opening")
        auth = TerminalAuth(terminals().terminal_id, "S1")
        start = utcnow()

        def confirm_at(at: datetime, hold_id: str, member_id: str = "M1") -> None:
            central.store.clock = lambda: at
            assert holds.confirm(central.store, auth, hold_id=hold_id, member_id=member_id,
                                 points=100, txn_ref=hold_id).confirmed

        confirm_at(start, "old")
        confirm_at(start, "other", "M2")
        assert holds.release(central.store, auth, "old")
        confirm_at(start + timedelta(days=20), "younger")
        ended = start + holds.HOLD_TTL + holds.HOLD_KEPT
        confirm_at(ended - timedelta(seconds=1), "almost")
        assert [r[0] for r in hold_rows(central)] == ["old", "other", "younger", "almost"]
        confirm_at(ended + timedelta(seconds=1), "new")
        assert [r[0] for r in hold_rows(central)] == ["other", "younger", "almost", "new"]

    def test_an_online_claim_without_a_hold_is_bounded_like_an_offline_event(
            self, central: Central, terminals: TerminalFactory, member_2000: str) -> None:
        """An event flagged online that central never confirmed meets the offline caps."""
        t = terminals()
        auth = TerminalAuth(t.terminal_id, "S1")
        ev = EventIn(event_id="forged-1", terminal_id=t.terminal_id, terminal_seq=1,
                     member_id="M1", kind="redeem", points=-3000, txn_ref="P/1/redeem",
                     terminal_time=utcnow(), offline=False)
        out = central.store.push(auth, [ev])
        assert out.results[0].status == "held" and "offline caps" in out.results[0].reason
        assert central.store.balance("M1") == 2000

    def test_a_hold_covers_only_its_own_terminal_member_and_points(
            self, central: Central, terminals: TerminalFactory, member_2000: str) -> None:
        """Only the terminal that holds the points, for that member and at most those
        points, is spared the offline caps; any other event with the hold's id meets them."""
        t1, t2 = terminals(), terminals()
        a1, a2 = TerminalAuth(t1.terminal_id, "S1"), TerminalAuth(t2.terminal_id, "S1")
        assert holds.confirm(central.store, a1, hold_id="h1", member_id="M1", points=1500,
                             txn_ref="x").confirmed
        with central.store.read() as conn:
            got = confirmed_online(conn, t1.terminal_id, [
                ("h1", "M1", -1500), ("h1", "M2", -1500), ("h1", "M1", -1501),
                ("h1", "M1", 10), ("h9", "M1", -1)])
            assert got == {"h1"}
            assert confirmed_online(conn, t2.terminal_id, [("h1", "M1", -1500)]) == set()
        central.store.set_policy("S1", EventPolicy(offline_member_cap=0))
        central.store.adjust_points("M1", -1000, "store IT")  # 1,000 left
        steal = EventIn("h1", t2.terminal_id, 1, "M1", "redeem", -1500, "x", utcnow(), False)
        assert central.store.push(a2, [steal]).results[0].status == "held"
        assert central.store.balance("M1") == 1000
        assert hold_rows(central)[0][3] == "held"


def _waiting_on_locks(central: Central) -> int:
    """How many sessions of this database wait for a row lock."""
    with central.store.read() as conn:
        return int(conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'")).scalar_one())


@pytest.fixture
def one_terminal(terminals: TerminalFactory) -> TerminalHandle:
    return terminals()


JUNK = st.one_of(
    st.binary(max_size=500),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(
            ["hold_id", "member_id", "points", "txn_ref", "replaces", "x"]), c, max_size=5),
        max_leaves=12).map(lambda v: json.dumps(v).encode()))


@pytest.mark.parametrize("central_url", ["sqlite"], indirect=True)
class TestFuzz:
    @settings(max_examples=150, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(body=JUNK, route=st.sampled_from(["/v1/redeem/hold", "/v1/redeem/release"]))
    def test_redeem_routes_never_answer_5xx(self, central: Central, member_2000: str,
                                            one_terminal: TerminalHandle, body: bytes,
                                            route: str) -> None:
        """Any bytes or JSON-shaped junk to the redeem routes, with a valid credential,
        get a 2xx or a 4xx with a reason; nothing is held beyond the balance."""
        t = one_terminal
        r = httpx.post(central.url + route, content=body, timeout=10,
                       headers={"Authorization": f"Bearer {t.credential}",
                                "Content-Type": "application/json"})
        assert r.status_code < 500, r.text
        assert isinstance(r.json(), dict)
        assert sum(h[2] for h in hold_rows(central) if h[3] == "held") <= 2000
