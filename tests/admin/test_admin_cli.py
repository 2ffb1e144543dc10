"""Store IT's `admin` commands on a central database, run through the real CLI group."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner

from pos_loyalty.cli import main
from pos_loyalty.server.central import CentralStore
from pos_loyalty.server.terminals.queries import Heartbeat, TerminalAuth
from tests.admin.conftest import Admin

REPO = Path(__file__).resolve().parents[2]
POINTS = '[program]\nname = "Points"\n\n[[rule]]\nid = "base"\nkind = "earn"\n' \
         'label = "Base"\npoints = {points}\nper = 100\n'


class TestMembers:
    def test_update_changes_only_what_it_is_given(self, admin: Admin) -> None:
        """`member update --tier` keeps the name, e-mail and birthday."""
        admin("member", "add", "M-1", "--name", "Ann Lee", "--email", "ann@example.org",
              "--tier", "silver", "--birthday", "1990-06-14", "--card", "C-1")
        admin("member", "update", "M-1", "--tier", "gold")
        d = admin.store.get_member("M-1")
        assert (d.display_name, d.email, d.tier, str(d.birthday)) == \
            ("Ann Lee", "ann@example.org", "gold", "1990-06-14")
        admin("member", "update", "M-1", "--tier", "")
        assert admin.store.get_member("M-1").tier is None
        assert admin.store.get_member("M-1").display_name == "Ann Lee"
        out = admin("member", "show", "M-1").output
        assert "Ann Lee" in out and "C-1 (active)" in out and "balance  0" in out
        lines = out.splitlines()  # one field a line, no escaped newlines
        assert "name     Ann Lee" in lines and "tier     -" in lines and "\\n" not in out

    def test_duplicates_and_empty_ids_are_one_line_errors(self, admin: Admin) -> None:
        """A taken member id, a taken card, an empty id: one clear line, nothing written."""
        admin("member", "add", "M-1", "--card", "C-1")
        assert "already exists" in admin("member", "add", "M-1", ok=False).stderr
        taken = admin("member", "add", "M-2", "--card", "C-1", ok=False).stderr
        assert "card C-1 already belongs to member M-1" in taken
        assert "empty" in admin("member", "add", "", ok=False).stderr
        assert "nothing to change" in admin("member", "update", "M-1", ok=False).stderr
        assert "no member M-9" in admin("member", "show", "M-9", ok=False).stderr
        assert [r.member_id for r in admin.store.list_members()] == ["M-1"]

    def test_search_by_id_card_and_name(self, admin: Admin) -> None:
        """Search finds a member by the start of its id, card id or name (any case)."""
        admin("member", "add", "M-100", "--name", "Dana Cohen", "--card", "CARD-77")
        admin("member", "add", "M-200", "--name", "Dan Levi")
        admin("member", "add", "X-1", "--name", "Eli")
        assert {r.member_id for r in admin.store.search_members("dan")} == {"M-100", "M-200"}
        assert [r.member_id for r in admin.store.search_members("CARD-7")] == ["M-100"]
        assert [r.member_id for r in admin.store.search_members("M-2")] == ["M-200"]
        out = admin("member", "search", "eli").output
        assert out.splitlines()[0].split() == ["MEMBER", "NAME", "TIER", "STATUS", "BALANCE"]
        assert "X-1" in out
        assert "no member matches" in admin("member", "search", "zz", ok=False).stderr
        page = admin("member", "list", "--after", "M-100", "--limit", "1").output
        assert "M-200" in page and "M-100" not in page and "X-1" not in page

    def test_export_then_import_round_trip(self, admin: Admin, tmp_path: Path) -> None:
        """An exported file imports back unchanged; an edited column changes only that."""
        admin("member", "add", "M-1", "--name", "Ann", "--tier", "gold", "--card", "C-1",
              "--points", "40")
        admin("member", "add", "M-2", "--name", "Ben", "--email", "ben@example.org")
        out = tmp_path / "members.csv"
        admin("member", "export", "-o", str(out))
        rows = list(csv.DictReader(io.StringIO(out.read_text())))
        assert [(r["member_id"], r["balance"], r["cards"]) for r in rows] == \
            [("M-1", "40", "C-1"), ("M-2", "0", "")]
        edited = tmp_path / "edit.csv"
        edited.write_text("member_id,tier,card_id\nM-2,silver,C-2\nM-3,,\n")
        res = admin("member", "import", str(edited)).output
        assert "1 added, 1 updated" in res
        ben = admin.store.get_member("M-2")
        assert (ben.display_name, ben.email, ben.tier) == ("Ben", "ben@example.org", "silver")
        assert [c.card_id for c in ben.cards] == ["C-2"]
        assert admin.store.get_member("M-1").tier == "gold"

    def test_bad_import_names_the_line_and_writes_nothing(self, admin: Admin,
                                                          tmp_path: Path) -> None:
        """A bad birthday on line 3 stops the import before anything is written."""
        bad = tmp_path / "bad.csv"
        bad.write_text("member_id,display_name,birthday\nM-1,Ann,1990-01-01\n"
                       "M-2,Ben,14/06/1990\n")
        err = admin("member", "import", str(bad), ok=False).stderr
        assert f"{bad}: line 3:" in err and "YYYY-MM-DD" in err
        assert admin.store.list_members() == []
        dup = tmp_path / "dup.csv"
        dup.write_text("member_id\nM-1\nM-1\n")
        assert "repeated (first on line 2)" in admin("member", "import", str(dup),
                                                     ok=False).stderr

    def test_merge_moves_cards_and_points(self, admin: Admin) -> None:
        """Merging folds balance and cards into the target; the ledger explains both."""
        admin("member", "add", "M-1", "--card", "C-1", "--points", "30")
        admin("member", "add", "M-2", "--card", "C-2", "--points", "5")
        assert "30 points moved" in admin("member", "merge", "M-1", "M-2").output
        m2 = admin.store.get_member("M-2")
        assert m2.balance == 35 and [c.card_id for c in m2.cards] == ["C-1", "C-2"]
        m1 = admin.store.get_member("M-1")
        assert (m1.status, m1.merged_into, m1.balance) == ("merged", "M-2", 0)
        assert "already merged" in admin("member", "merge", "M-1", "M-2", ok=False).stderr
        assert any(h.txn_ref == "merged from M-1" for h in m2.history)


class TestPointsAndCards:
    def test_adjust_is_an_audited_ledger_event(self, admin: Admin) -> None:
        """+N and -N are ledger rows with the reason and who made them; below 0 is refused."""
        admin("member", "add", "M-1")
        out = admin("points", "adjust", "M-1", "+25", "--reason", "late delivery").output
        assert "+25 points (late delivery); balance 25" in out
        admin("points", "adjust", "M-1", "-5", "--reason", "typo")
        assert "has 20 points" in admin("points", "adjust", "M-1", "-21", "--reason", "x",
                                         ok=False).stderr
        assert "reason is required" in admin("points", "adjust", "M-1", "5", "--reason", " ",
                                             ok=False).stderr
        d = admin.store.get_member("M-1")
        assert d.balance == 20 == admin.store.ledger_sum("M-1")
        assert [(h.kind, h.points, h.txn_ref, h.terminal_id) for h in d.history] == [
            ("adjust", -5, "typo", "central"), ("adjust", 25, "late delivery", "central")]

    def test_lost_card_is_blocked_and_replaced_keeping_the_balance(self, admin: Admin) -> None:
        """Blocking with --replace-with moves nothing but the card: the balance stays."""
        admin("member", "add", "M-1", "--card", "C-1", "--points", "70")
        out = admin("card", "block", "C-1", "--replace-with", "C-9").output
        assert "card C-9 issued to member M-1 (balance 70 kept)" in out
        cards = {c.card_id: c.status for c in admin.store.get_member("M-1").cards}
        assert cards == {"C-1": "blocked", "C-9": "active"}
        assert "no card C-5" in admin("card", "block", "C-5", ok=False).stderr
        assert "already belongs" in admin("card", "block", "C-1", "--replace-with", "C-9",
                                          ok=False).stderr

    def test_blank_card_starts_an_anonymous_member_claimed_later(self, admin: Admin) -> None:
        """A blank card is a member at once (it can earn); store IT claims it with a name."""
        admin("card", "blank", "B-1", "B-2")
        assert [r.member_id for r in admin.store.list_members(anonymous=True)] == \
            ["A-B-1", "A-B-2"]
        admin.store.adjust_points("A-B-1", 12, "first sale", actor="till")
        admin("member", "update", "A-B-1", "--name", "Noa", "--consent")
        d = admin.store.get_member("A-B-1")
        assert not d.anonymous and d.consent_at is not None and d.balance == 12
        out = admin("member", "list", "--anonymous").output
        assert "A-B-2" in out and "A-B-1" not in out


class TestPrograms:
    def test_validate_names_the_line(self, admin: Admin, tmp_path: Path) -> None:
        """A valid file passes; a bad one is refused with its line, in one line."""
        good = tmp_path / "good.toml"
        good.write_text(POINTS.format(points=1))
        ok = CliRunner().invoke(main, ["admin", "program", "validate", str(good)])
        assert ok.exit_code == 0 and "is valid (1 rules)" in ok.output
        bad = tmp_path / "bad.toml"
        bad.write_text(POINTS.format(points='"many"'))
        err = CliRunner().invoke(main, ["admin", "program", "validate", str(bad)])
        assert err.exit_code == 1 and err.stderr.count("\n") == 1
        assert re.search(r"bad\.toml:8: key 'rule\[0\]\.points': must be an integer",
                         err.stderr), err.stderr

    def test_publish_diff_rollback(self, admin: Admin, tmp_path: Path) -> None:
        """Versions are kept; diff says what changed in words; rollback is one step."""
        for n in (1, 2):
            (tmp_path / f"p{n}.toml").write_text(POINTS.format(points=n))
        assert "version 1 for the whole chain: live now" in \
            admin("program", "publish", str(tmp_path / "p1.toml")).output
        admin("program", "publish", str(tmp_path / "p2.toml"), "--store", "S1")
        assert admin("program", "diff", "1", "2").output.strip() == \
            "earn rate 1 -> 2 pts per 1.00"
        live = admin.store.live_program("S1")
        assert live is not None and live.version == 2
        chain = admin.store.live_program("S2")
        assert chain is not None and chain.version == 1
        out = admin("program", "rollback", "1", "--store", "S1").output
        assert "live now as version 3 for S1" in out
        live = admin.store.live_program("S1")
        assert live is not None and live.version == 3 and "points = 1" in live.body
        listed = admin("program", "list").output
        assert "rollback to version 1" in listed and listed.startswith("VERSION")
        shown = admin("program", "show", "--store", "S1")
        assert shown.stdout == POINTS.format(points=1)

    def test_scheduled_version_goes_live_at_its_time(self, admin: Admin,
                                                     tmp_path: Path) -> None:
        """--at in the future keeps the live version until central's clock passes it."""
        (tmp_path / "p.toml").write_text(POINTS.format(points=3))
        at_utc = admin.store.clock() + timedelta(hours=2)
        out = admin("program", "publish", str(tmp_path / "p.toml"), "--at",
                    at_utc.isoformat(timespec="seconds")).output
        assert f"starts {at_utc.isoformat(timespec='seconds')} UTC" in out
        assert admin.store.live_program(None) is None
        later = CentralStore(admin.url, clock=lambda: at_utc + timedelta(seconds=1))
        try:
            assert later.activate_programs() == 1
            live = later.live_program("S1")
            assert live is not None and live.version == 1
        finally:
            later.close()

    def test_dry_run_shows_cost_against_the_live_program(self, admin: Admin,
                                                         tmp_path: Path) -> None:
        """Replaying sales under a doubled earn rate shows twice the points of the live one."""
        (tmp_path / "p1.toml").write_text(POINTS.format(points=1))
        (tmp_path / "p2.toml").write_text(POINTS.format(points=2))
        admin("program", "publish", str(tmp_path / "p1.toml"))
        now = admin.store.clock()
        sales = tmp_path / "sales.csv"
        sales.write_text("txn_id,time,sku,qty,unit_price,category,member_id\n"
                         f"T1,{(now - timedelta(days=1)).isoformat()},A,1,1000,misc,M-1\n"
                         f"T2,{(now - timedelta(days=40)).isoformat()},A,1,5000,misc,M-1\n")
        out = admin("program", "dry-run", str(tmp_path / "p2.toml"), "--sales", str(sales),
                    "--days", "7").output
        assert "against version 1 over 1 sales" in out
        total = [ln for ln in out.splitlines() if ln.startswith("total")][-1]
        assert total.split() == ["total", "0.10", "0.20", "0.10", "+10"]
        binary = tmp_path / "sales.bin"
        binary.write_bytes(b"\xff\xfe\x00txn_id")
        refused = admin("program", "dry-run", str(tmp_path / "p2.toml"), "--sales",
                        str(binary), ok=False)  # one line naming the file, no traceback
        assert f"cannot read {binary}" in refused.stderr


class TestFleet:
    def test_terminal_list_has_headers_health_and_stale_flag(self, admin: Admin) -> None:
        """A heartbeat shows in the list; a terminal silent too long is flagged STALE."""
        _tid, code = admin.store.add_terminal("S1", terminal_id="T-1")
        admin.store.add_terminal("S1", terminal_id="T-2")
        enrolled = admin.store.enroll(code)
        assert enrolled.terminal_id == "T-1"
        admin.store.record_heartbeat(TerminalAuth("T-1", "S1"), Heartbeat(
            software_version="1.2.3", program_name="Points", program_version=4,
            reader_state="ok", till_state="up", outbox_depth=3, last_error="",
            held_count=1))
        out = admin("terminal", "list").output.splitlines()
        assert out[0].split()[:5] == ["TERMINAL", "STORE", "STATUS", "SEEN", "FLAG"]
        row = next(ln for ln in out if ln.startswith("T-1"))
        assert "1.2.3" in row and "Points v4" in row and " ok " in row
        late = CentralStore(admin.url, clock=lambda: admin.store.clock() + timedelta(hours=1))
        try:
            [t1] = [t for t in late.list_terminals() if t.terminal_id == "T-1"]
            assert t1.stale and t1.outbox_depth == 3 and t1.held_count == 1
        finally:
            late.close()


def test_export_is_valid_csv_with_header(admin: Admin) -> None:
    """The export's header is the import's columns plus status, balance and cards."""
    admin("member", "add", "M-1", "--name", 'Ann "the first", Lee')
    text = admin("member", "export").output
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["member_id", "display_name", "email"]
    assert rows[1][1] == 'Ann "the first", Lee'


class TestStandalone:
    def test_member_added_to_a_terminal_without_central(self, tmp_path: Path) -> None:
        """A shop with no central adds a member to its terminal's store; the card is found
        there; a taken card and an enrolled terminal are refused in one line."""
        from pos_loyalty.config import load_config
        from pos_loyalty.store.local import LocalStore

        cfg = tmp_path / "terminal.toml"
        cfg.write_text(f'[terminal]\ndata_dir = "{tmp_path / "state"}"\n')
        run = CliRunner().invoke
        args = ["admin", "member", "add", "M-1", "--name", "Ann", "--card", "C-1",
                "--terminal-config", str(cfg)]
        ok = run(main, args)
        assert ok.exit_code == 0, ok.output
        store = LocalStore(load_config(cfg).resolved_db_url)
        try:
            rec = store.find_by_card("C-1")
            assert rec is not None and rec.member_id == "M-1"
        finally:
            store.close()
        again = run(main, [*args[:3], "M-2", *args[4:]])
        assert again.exit_code == 1 and "card C-1 is already issued" in again.stderr
        store = LocalStore(load_config(cfg).resolved_db_url)
        try:
            store.set_enrollment(server_url="https://central", terminal_id="T-1",
                                 store_id="S1", credential="T-1.x")
        finally:
            store.close()
        enrolled = run(main, [*args[:3], "M-3", "--card", "C-3", "--terminal-config",
                              str(cfg)])
        assert enrolled.exit_code == 1 and "add members there" in enrolled.stderr
