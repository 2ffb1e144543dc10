"""A stolen terminal credential against a live central (uvicorn on loopback, SQLite and
PostgreSQL): every attack is refused, held or flagged, and balances stay the sum of the
applied ledger."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from pos_loyalty.ids import uuid7
from pos_loyalty.server.checks import EventPolicy
from tests.conftest import Central, TerminalFactory, TerminalHandle

NOW = datetime(2026, 3, 1, 12, 0)


class Pusher:
    """Pushes hand-made events as one terminal, numbering terminal_seq itself."""

    def __init__(self, t: TerminalHandle) -> None:
        self.t = t
        self.seq = 0

    def event(self, member: str = "M1", kind: str = "earn", points: int = 10,
              **over: Any) -> dict[str, Any]:
        self.seq += 1
        ev: dict[str, Any] = {
            "event_id": str(uuid7()), "terminal_id": self.t.terminal_id,
            "terminal_seq": self.seq, "member_id": member, "kind": kind, "points": points,
            "txn_ref": f"POS-1/T{self.seq}", "terminal_time": NOW.isoformat(),
            "offline": True}
        ev.update(over)
        return ev

    def push(self, events: list[dict[str, Any]], **extra: Any) -> httpx.Response:
        return httpx.post(f"{self.t.server_url}/v1/ledger/push",
                          json={"events": events, **extra},
                          headers={"Authorization": f"Bearer {self.t.credential}"}, timeout=60)

    def ok(self, events: list[dict[str, Any]], **extra: Any) -> list[dict[str, Any]]:
        r = self.push(events, **extra)
        assert r.status_code == 200, r.text
        results: list[dict[str, Any]] = r.json()["results"]
        return results


def statuses(results: list[dict[str, Any]]) -> list[str]:
    return [r["status"] for r in results]


def integrity_clean(central: Central) -> None:
    from pos_loyalty.server.cli import report

    out = CliRunner().invoke(report, ["integrity", "--db", central.db_url])
    assert out.exit_code == 0, out.output


@pytest.fixture
def members(central: Central) -> Iterator[Central]:
    for m in ("M1", "M2"):
        central.store.add_member(m, m, card_id=f"C-{m}")
        central.store.adjust_points(m, 1000, "opening")
    yield central
    integrity_clean(central)


class TestMinting:
    def test_huge_earn_is_held_not_applied(self, members: Central,
                                           terminals: TerminalFactory) -> None:
        """An earn of 10^12 points is stored held with the cap named; the balance stays."""
        p = Pusher(terminals())
        r = p.push([p.event(points=10**12)])
        assert r.status_code == 200
        (res,) = r.json()["results"]
        assert res["status"] == "held" and "per-event cap" in res["reason"]
        assert r.json()["held"] == 1
        assert members.store.balance("M1") == 1000 == members.store.ledger_sum("M1")
        assert [h.points for h in members.store.held()] == [10**12]

    def test_five_thousand_big_earns_are_capped_per_terminal_day(
            self, members: Central, terminals: TerminalFactory) -> None:
        """A batch of 5,000 earns at the per-event cap applies only up to the daily cap."""
        pol = EventPolicy()
        p = Pusher(terminals())
        results = p.ok([p.event(points=pol.max_event_points) for _ in range(5000)])
        fit = pol.max_terminal_day_earn // pol.max_event_points
        assert statuses(results) == ["stored"] * fit + ["held"] * (5000 - fit)
        assert "daily earn cap" in results[-1]["reason"]
        assert members.store.balance("M1") == 1000 + fit * pol.max_event_points
        assert members.store.balance("M1") == members.store.ledger_sum("M1")
        # the next push the same day is held from the first event on
        assert statuses(p.ok([p.event(points=1)])) == ["held"]

    def test_store_policy_changes_the_caps(self, members: Central,
                                           terminals: TerminalFactory) -> None:
        """A store's own policy replaces the defaults for its terminals only."""
        members.store.set_policy("S1", EventPolicy(max_event_points=50))
        p1, p2 = Pusher(terminals("S1")), Pusher(terminals("S2"))
        assert statuses(p1.ok([p1.event(points=60)])) == ["held"]
        assert statuses(p2.ok([p2.event(points=60)])) == ["stored"]

    @pytest.mark.parametrize(("kind", "points", "why"), [
        ("redeem", 500, "redeem with positive points"),
        ("expire", 500, "expire with positive points"),
        ("adjust", 500, "only from store IT"),
        ("adjust", -5, "only from store IT"),
        ("earn", -5, "earn with negative points"),
        ("reversal", 500, "does not reference a sale"),
    ])
    def test_kind_and_sign_must_agree(self, members: Central, terminals: TerminalFactory,
                                      kind: str, points: int, why: str) -> None:
        """Credits disguised as redeem/expire/adjust/reversal are held, with the reason."""
        p = Pusher(terminals())
        (res,) = p.ok([p.event(kind=kind, points=points)])
        assert res["status"] == "held" and why in res["reason"]
        assert members.store.balance("M1") == 1000

    def test_reversal_gives_back_at_most_what_the_sale_redeemed(
            self, members: Central, terminals: TerminalFactory) -> None:
        """A refund re-credits the points its sale redeemed, and not one more."""
        p = Pusher(terminals())
        sale = [p.event(points=30, txn_ref="P/1"),
                p.event(kind="redeem", points=-200, txn_ref="P/1/redeem")]
        assert statuses(p.ok(sale)) == ["stored", "stored"]
        back = p.ok([p.event(kind="reversal", points=150, txn_ref="P/1/refund/r1"),
                     p.event(kind="reversal", points=-30, txn_ref="P/1/refund/r1"),
                     p.event(kind="reversal", points=100, txn_ref="P/1/refund/r2")])
        assert statuses(back) == ["stored", "stored", "held"]
        assert members.store.balance("M1") == 1000 + 30 - 200 + 150 - 30

    def test_refund_paying_for_spent_points_is_applied_and_a_forged_cover_held(
            self, members: Central, terminals: TerminalFactory) -> None:
        """The cover credit of a refund (spent points paid from its money) is applied up to
        what that refund took back; more, or one without a refund, is held."""
        p = Pusher(terminals())
        assert statuses(p.ok([p.event(points=40, txn_ref="P/2")])) == ["stored"]
        refund = [p.event(kind="reversal", points=-40, txn_ref="P/2/refund/r1"),
                  p.event(kind="reversal", points=31, txn_ref="P/2/refund/r1/cover")]
        assert statuses(p.ok(refund)) == ["stored", "stored"]
        forged = p.ok([p.event(kind="reversal", points=10, txn_ref="P/2/refund/r1/cover"),
                       p.event(kind="reversal", points=5, txn_ref="P/2/refund/r9/cover")])
        assert statuses(forged) == ["held", "held"]
        assert "9 points the refund took back" in forged[0]["reason"]
        assert members.store.balance("M1") == 1000 + 40 - 40 + 31


class TestDraining:
    def test_debit_at_a_store_the_member_never_used_is_held(
            self, members: Central, terminals: TerminalFactory) -> None:
        """Store B cannot redeem a store A member's points unless B's policy allows it."""
        a, b = Pusher(terminals("S1")), Pusher(terminals("S2"))
        assert statuses(a.ok([a.event(points=5)])) == ["stored"]
        (res,) = b.ok([b.event(kind="redeem", points=-900, txn_ref="B/1/redeem")])
        assert res["status"] == "held" and "never shopped" in res["reason"]
        assert members.store.balance("M1") == 1005
        members.store.set_policy("S2", EventPolicy(debit_other_stores=True))
        assert statuses(b.ok([b.event(kind="redeem", points=-900,
                                      txn_ref="B/2/redeem")])) == ["stored"]
        assert members.store.balance("M1") == 105

    def test_overdraft_beyond_the_offline_caps_is_held(
            self, members: Central, terminals: TerminalFactory) -> None:
        """A redemption past the balance is kept within the offline member cap; beyond, held."""
        p = Pusher(terminals())
        res = p.ok([p.event(kind="redeem", points=-1400, txn_ref="P/1/redeem"),
                    p.event(kind="redeem", points=-200, txn_ref="P/2/redeem")])
        assert statuses(res) == ["stored", "held"]
        assert "offline caps" in res[1]["reason"]
        assert members.store.balance("M1") == -400
        [od] = members.store.reconcile().overdrafts
        assert od.points_short == 400 and od.member_id == "M1"

    def test_unknown_member_is_held_and_never_pulled(
            self, members: Central, terminals: TerminalFactory) -> None:
        """An event for a member central does not know creates no balance anyone pulls."""
        t = terminals()
        p = Pusher(t)
        (res,) = p.ok([p.event(member="GHOST", points=50)])
        assert res["status"] == "held" and res["reason"] == "unknown member"
        until = httpx.get(f"{t.server_url}/v1/sync/horizon",
                          headers={"Authorization": f"Bearer {t.credential}"}).json()["until"]
        page = httpx.get(f"{t.server_url}/v1/sync/pull",
                         params={"entity": "balances", "until": until},
                         headers={"Authorization": f"Bearer {t.credential}"}).json()
        assert "GHOST" not in {row[0] for row in page["rows"]}


class TestDuplicatesAndClones:
    def test_id_repeated_inside_a_push_is_credited_once(
            self, members: Central, terminals: TerminalFactory) -> None:
        """100 copies of one event in one push: one stored, 99 conflicts listed for review."""
        p = Pusher(terminals())
        ev = p.event(points=1000)
        results = p.ok([ev] * 100)
        assert statuses(results) == ["stored"] + ["conflict"] * 99
        assert members.store.balance("M1") == 2000 == members.store.ledger_sum("M1")
        review = members.store.reconcile().review
        assert len(review) == 99 and {r.kind for r in review} == {"conflict"}

    def test_known_id_with_other_content_is_a_conflict(
            self, members: Central, terminals: TerminalFactory) -> None:
        """Re-pushing an id with other points or member is a conflict, not a silent duplicate."""
        p = Pusher(terminals())
        ev = p.event(points=10)
        assert statuses(p.ok([ev])) == ["stored"]
        assert statuses(p.ok([ev])) == ["duplicate"]
        changed = dict(ev, points=10_000)
        moved = dict(ev, member_id="M2")
        res = p.ok([changed, moved][:1]) + p.ok([moved])
        assert statuses(res) == ["conflict", "conflict"]
        assert "other content" in res[0]["reason"]
        assert members.store.balance("M1") == 1010 and members.store.balance("M2") == 1000
        details = [r.detail for r in members.store.reconcile().review]
        assert any('"points": 10000' in d for d in details)

    def test_reused_and_jumping_sequence_is_flagged(
            self, members: Central, terminals: TerminalFactory) -> None:
        """A second event with a used terminal_seq, or a jump to 2^62, is flagged for review."""
        p = Pusher(terminals())
        first = p.event()
        p.ok([first])
        clone = p.event(terminal_seq=first["terminal_seq"])
        jump = p.event(terminal_seq=2**62)
        res = p.ok([clone, jump])
        assert [r["flags"] for r in res] == ["seq_reuse", "seq_gap"]
        kinds = sorted(r.kind for r in members.store.reconcile().review)
        assert kinds == ["seq_gap", "seq_reuse"]


class TestHeldWorkflow:
    def test_store_it_releases_or_rejects_held_events(
            self, members: Central, terminals: TerminalFactory) -> None:
        """`admin held list|release|reject`: a release applies the points, a reject never."""
        from pos_loyalty.server.cli import admin

        p = Pusher(terminals())
        big, bad = p.event(points=200_000), p.event(kind="adjust", points=70)
        assert statuses(p.ok([big, bad])) == ["held", "held"]
        run = CliRunner()
        db = ["--db", members.db_url]
        listed = run.invoke(admin, ["held", "list", *db])
        assert listed.exit_code == 0 and big["event_id"] in listed.output
        assert "per-event cap" in listed.output
        no_reason = run.invoke(admin, ["held", "release", big["event_id"], *db])
        assert no_reason.exit_code == 2
        ok = run.invoke(admin, ["held", "release", big["event_id"], "--reason",
                                "bulk order, confirmed", *db])
        assert ok.exit_code == 0, ok.output
        assert members.store.balance("M1") == 201_000 == members.store.ledger_sum("M1")
        rej = run.invoke(admin, ["held", "reject", bad["event_id"], "--reason", "no", *db])
        assert rej.exit_code == 0, rej.output
        assert members.store.held() == []
        again = run.invoke(admin, ["held", "release", bad["event_id"], "--reason", "x", *db])
        assert again.exit_code == 1 and "no held event" in again.output
        assert members.store.balance("M1") == 201_000

    def test_integrity_report_fails_on_a_tampered_balance(
            self, members: Central) -> None:
        """`report integrity` exits non-zero and names the member whose balance was bent."""
        from sqlalchemy import text

        from pos_loyalty.server.cli import report

        with members.store.engine.begin() as conn:
            conn.execute(text("UPDATE balances SET balance = balance + 5 WHERE member_id='M2'"))
        out = CliRunner().invoke(report, ["integrity", "--db", members.db_url])
        assert out.exit_code == 1
        assert "member M2: balance 1005, applied ledger sum 1000" in out.output
        with members.store.engine.begin() as conn:
            conn.execute(text("UPDATE balances SET balance = balance - 5 WHERE member_id='M2'"))


class TestInputAndClock:
    @pytest.mark.parametrize(("field", "value"), [
        ("points", "5"), ("points", 5.0), ("points", True), ("terminal_seq", "3"),
        ("terminal_seq", True), ("offline", 1), ("offline", "true"),
        ("member_id", "M 1"), ("member_id", "M1\n"), ("member_id", "../M1"),
        ("event_id", "e\x1b[31m"), ("txn_ref", "POS\r\nFAKE"),
    ])
    def test_strict_types_and_id_charset(self, members: Central, terminals: TerminalFactory,
                                         field: str, value: Any) -> None:
        """No "5" or true for an integer, no 1 for a boolean, ids in their character set."""
        p = Pusher(terminals())
        r = p.push([p.event(**{field: value})])
        assert r.status_code == 422, r.text
        assert field in r.json()["reason"]

    def test_extreme_time_and_cursor_are_4xx(self, members: Central,
                                             terminals: TerminalFactory) -> None:
        """A time that overflows in UTC and a cursor above 2^63 get 422, never a 5xx."""
        t = terminals()
        p = Pusher(t)
        r = p.push([p.event(terminal_time="9999-12-31T23:59:59-01:00")])
        assert r.status_code == 422 and "terminal_time" in r.json()["reason"]
        r = p.push([p.event(terminal_time="0001-01-01T00:00:00+01:00")])
        assert r.status_code == 422
        r = httpx.get(f"{t.server_url}/v1/sync/pull", params={
            "entity": "members", "until": 1, "after": f"{2**63}:M1"},
            headers={"Authorization": f"Bearer {t.credential}"})
        assert r.status_code == 422 and "after" in r.json()["reason"]

    def test_terminal_clock_decades_off_is_accepted_and_flagged(
            self, members: Central, terminals: TerminalFactory) -> None:
        """A terminal booted in 1970 (offset ~56 years) still pushes; its events say 'clock'."""
        p = Pusher(terminals())
        offset = int((datetime(2026, 11, 30) - datetime(1970, 1, 1)).total_seconds() * 1000)
        res = p.ok([p.event(terminal_time="1970-01-01T00:05:00")], clock_offset_ms=offset)
        assert res[0]["status"] == "stored" and "clock" in res[0]["flags"].split(",")
        far = p.ok([p.event(terminal_time="9999-12-30T00:00:00+00:00")],
                   clock_offset_ms=-(2**63 - 1))
        assert set(far[0]["flags"].split(",")) == {"future", "clock"}
        assert p.push([p.event()], clock_offset_ms=2**63).status_code == 422

    def test_server_time_carries_its_offset(self, members: Central,
                                            terminals: TerminalFactory) -> None:
        """Every server_time is ISO 8601 with its UTC offset, so no reader guesses the zone."""
        p = Pusher(terminals())
        health = httpx.get(f"{members.url}/v1/health").json()["server_time"]
        pushed = p.push([p.event()]).json()["server_time"]
        for value in (health, pushed):
            assert datetime.fromisoformat(value).utcoffset() is not None, value

    def test_every_bad_credential_gets_one_reason(self, members: Central,
                                                  terminals: TerminalFactory) -> None:
        """Missing, malformed, unknown and wrong-secret credentials are indistinguishable."""
        t = terminals()
        reasons = set()
        for header in (None, "Basic x", "Bearer", "Bearer nodot", "Bearer T-NOPE.secret",
                       f"Bearer {t.terminal_id}.wrong"):
            headers = {"Authorization": header} if header else {}
            r = httpx.get(f"{t.server_url}/v1/sync/horizon", headers=headers)
            assert r.status_code == 401
            reasons.add(r.json()["reason"])
        assert len(reasons) == 1


SQLITE_ONLY = pytest.mark.parametrize("central_url", ["sqlite"], indirect=True)


@SQLITE_ONLY
class TestOpenAPI:
    def test_every_reference_resolves(self, central: Central) -> None:
        """The OpenAPI document defines every schema it refers to (the push body included)."""
        doc = httpx.get(f"{central.url}/openapi.json").json()
        refs: list[str] = []

        def walk(node: object) -> None:
            if isinstance(node, dict):
                ref = node.get("$ref")
                if isinstance(ref, str):
                    refs.append(ref)
                for v in node.values():
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)

        walk(doc)
        schemas = doc["components"]["schemas"]
        assert "#/components/schemas/LedgerEventCreate" in refs
        for ref in refs:
            assert ref.startswith("#/components/schemas/"), ref
            assert ref.rpartition("/")[2] in schemas, ref
        body = doc["paths"]["/v1/ledger/push"]["post"]["requestBody"]
        assert body["content"]["application/json"]["schema"]["$ref"].endswith("/PushCreate")


class TestWhatTerminalsPull:
    def test_birthday_goes_out_as_month_and_day(self, central: Central,
                                                terminals: TerminalFactory) -> None:
        """Terminals get the day of a birthday (for offers), never the year (the age)."""
        from datetime import date

        central.store.add_member("B1", "Bea", birthday=date(1988, 2, 29))
        t = terminals()
        auth = {"Authorization": f"Bearer {t.credential}"}
        until = httpx.get(f"{t.server_url}/v1/sync/horizon", headers=auth).json()["until"]
        page = httpx.get(f"{t.server_url}/v1/sync/pull", headers=auth,
                         params={"entity": "members", "until": until}).json()
        row = dict(zip(page["columns"], page["rows"][0], strict=True))
        assert row["birthday"] == "2000-02-29"
        assert set(page["columns"]) == {"member_id", "display_name", "tier", "birthday",
                                        "status"}


class TestPolicyCommand:
    def test_store_it_sets_and_shows_a_store_policy(self, central: Central) -> None:
        """`admin store policy` prints the defaults, changes only the options given."""
        from pos_loyalty.server.cli import admin

        run = CliRunner()
        db = ["--db", central.db_url]
        shown = run.invoke(admin, ["store", "policy", "S7", *db])
        assert shown.exit_code == 0 and "max_event_points = 100000" in shown.output
        changed = run.invoke(admin, ["store", "policy", "S7", "--max-event-points", "250",
                                     "--debit-other-stores", *db])
        assert changed.exit_code == 0, changed.output
        assert central.store.policy("S7") == EventPolicy(max_event_points=250,
                                                         debit_other_stores=True)
        assert central.store.policy("S8") == EventPolicy()
        bad = run.invoke(admin, ["store", "policy", "S7", "--max-event-points", "-1", *db])
        assert bad.exit_code == 2
