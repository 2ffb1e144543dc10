"""Every owner report against a small data set whose figures are computed by hand below.

The chain, 2026-01-01 to 2026-03-31 (money in minor units, program: 1 pt per 1.00, 100 pts
redeem as 1.00, points valid 12 months):

- Ann (A): S1 01-10 dairy 1000 (+10), S1 02-10 bakery 2000 (+20), S1 03-25 coffee 3000
  redeeming 25 pts (paid 2975, +29), S2 03-26 dairy 1000 (+10): 4 visits, 6975 paid.
- Ben (B): S1 01-05 home 3000 + dairy 1000 (+40); 01-06 the dairy line refunded (-10).
- Cat (C): S2 03-30 dairy 500 (+5).
- Without a member: S1 01-15 1000, S1 03-01 3000.
- Visit answers: S1 10 and 9 (Jan), 7 and 3 (Feb); S2 6 (Mar). Tag answer: SERUM 10 (Mar).
- Tag taps: SERUM genuine then replayed, TOWEL genuine.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import event, insert

from pos_loyalty.insight.report import (
    Money,
    nps_of_counts,
    uplift,
)
from pos_loyalty.server.central import CentralStore
from pos_loyalty.server.ledger.queries import EventIn
from pos_loyalty.server.sales import reports
from pos_loyalty.server.terminals.queries import TerminalAuth
from pos_loyalty.store.central_models import PhoneNps, PhoneTap, VisitAnswer
from tests.reports.salesdata import record, store_sales

PROGRAM = """\
[program]
name = "Test points"
[[rule]]
id = "base"
kind = "earn"
points = 1
per = 100
[redemption]
points = 100
value = 100
min_points = 1
max_percent = 100
[expiry]
mode = "rolling"
months = 12
"""
UNTIL = date(2026, 3, 31)
OPTS = reports.Options(since=date(2026, 1, 1), until=UNTIL)


def d(month: int, day: int, hour: int = 10) -> datetime:
    return datetime(2026, month, day, hour)


def seed(store: CentralStore) -> None:
    for mid, name in (("A", "Ann"), ("B", "Ben"), ("C", "Cat")):
        store.add_member(mid, name, email=f"{name.lower()}@example.org")
    store.publish_program(PROGRAM)
    store_sales(store, "S1", [
        record("A1", d(1, 10), "A", [("MILK", "dairy", 1, 1000)], points=10),
        record("A2", d(2, 10), "A", [("BREAD", "bakery", 1, 2000)], points=20),
        record("A3", d(3, 25), "A", [("BEANS", "coffee", 1, 3000)], discount=25,
               points=29, redeemed=25),
        record("B1", d(1, 5), "B", [("MUG", "home", 1, 3000), ("MILK", "dairy", 1, 1000)],
               points=40),
        record("B1", d(1, 6), "B", [("MILK", "dairy", 1, 1000)], kind="refund",
               refund_id="R1", points=10),
        record("N1", d(1, 15), None, [("MILK", "dairy", 1, 1000)]),
        record("N2", d(3, 1), None, [("BEANS", "coffee", 1, 3000)]),
    ])
    store_sales(store, "S2", [
        record("A4", d(3, 26), "A", [("MILK", "dairy", 1, 1000)], points=10),
        record("C1", d(3, 30), "C", [("YOG", "dairy", 1, 500)], points=5),
    ])
    tid, _ = store.add_terminal("S1")
    events = [("A", "earn", 10, d(1, 10), "P1/A1"), ("A", "earn", 20, d(2, 10), "P1/A2"),
              ("A", "redeem", -25, d(3, 25), "P1/A3"), ("A", "earn", 29, d(3, 25), "P1/A3"),
              ("A", "earn", 10, d(3, 26), "P1/A4"), ("B", "earn", 40, d(1, 5), "P1/B1"),
              ("B", "reversal", -10, d(1, 6), "P1/B1/refund/R1"),
              ("C", "earn", 5, d(3, 30), "P1/C1")]
    out = store.push(TerminalAuth(tid, "S1"), [
        EventIn(f"00000000-0000-7000-8000-{i:012d}", tid, i + 1, m, k, p, ref, t)
        for i, (m, k, p, t, ref) in enumerate(events)], clock_offset_ms=0)
    assert [r.status for r in out.results] == ["stored"] * len(events)
    with store.engine.begin() as conn:
        conn.execute(insert(VisitAnswer), [
            {"event_id": f"va{i}", "member_id": "A", "store_id": s, "score": n,
             "comment": c, "answered_at": t}
            for i, (s, n, c, t) in enumerate([
                ("S1", 10, "great", d(1, 11)), ("S1", 9, "", d(1, 20)),
                ("S1", 7, "", d(2, 11)), ("S1", 3, "queue too long", d(2, 12)),
                ("S2", 6, "", d(3, 27))])])
        conn.execute(insert(PhoneTap), [
            {"tap_id": tap, "token_hash": None, "sku": sku, "uid": uid, "result": res,
             "counter": n, "store_id": "S1", "at": t, "day": t.date()}
            for tap, sku, uid, res, n, t in [
                ("t1", "SERUM", "04AA", "genuine", 1, d(3, 2)),
                ("t2", "SERUM", "04AA", "replayed", 1, d(3, 3)),
                ("t3", "TOWEL", "04BB", "genuine", 1, d(3, 4))]])
        conn.execute(insert(PhoneNps), [
            {"uid": "04AA", "sku": "SERUM", "score": 10, "comment": "lovely",
             "tap_id": "t1", "answered_at": d(3, 2, 11)}])


@pytest.fixture
def chain(central_url: str) -> Iterator[CentralStore]:
    store = CentralStore(central_url)
    seed(store)
    yield store
    store.close()


def figures(store: CentralStore, name: str, opts: reports.Options = OPTS) -> dict[str, object]:
    return dict(reports.build(store, name, opts).figures)


def table(store: CentralStore, name: str, key: str,
          opts: reports.Options = OPTS) -> list[tuple[object, ...]]:
    r = reports.build(store, name, opts)
    return [tuple(row) for row in next(t.rows for t in r.tables if t.key == key)]


class TestCustomers:
    def test_whole_chain(self, chain: CentralStore) -> None:
        """3 members bought; only Ann came back (33.3%); 6 visits; last visits 5, 85 and 1
        days before 03-31 (median 5); members paid 6975 + 3000 + 500 = 10475 of 14475."""
        f = figures(chain, "customers")
        assert f["Members who bought"] == 3
        assert str(f["Repeat-customer rate"]) == "33.3%"
        assert f["Purchase frequency (visits per member)"] == 2.0
        assert f["Median days since last visit"] == 5
        assert f["Spend per member"] == Money(3491)  # 10475 // 3
        assert (f["Revenue from members"], f["Revenue, all sales"]) == (10475, 14475)
        assert str(f["Share of revenue from members"]) == "72.4%"
        assert table(chain, "customers", "months") == [
            ("2026-01", 4000, 1000, pytest.approx(0.8)),
            ("2026-02", 2000, 0, 1.0),
            ("2026-03", 4475, 3000, pytest.approx(4475 / 7475))]

    def test_one_store(self, chain: CentralStore) -> None:
        """S1 only: Ann (3 visits) and Ben; members paid 5975 + 3000 of 12975."""
        opts = reports.Options(since=date(2026, 1, 1), until=UNTIL, stores=("S1",))
        f = figures(chain, "customers", opts)
        assert f["Members who bought"] == 2 and str(f["Repeat-customer rate"]) == "50.0%"
        assert (f["Revenue from members"], f["Revenue, all sales"]) == (8975, 12975)


class TestStagesAndSegments:
    def test_stages(self, chain: CentralStore) -> None:
        """Ann regular (4 visits), Ben one-off (85 days ago), Cat first visit."""
        rows = {r[0]: r[1] for r in table(chain, "stages", "stages")}
        assert rows == {"first visit": 1, "one off": 1, "repeat": 0, "regular": 1,
                        "loyal": 0, "lapsed": 0}

    def test_segments(self, chain: CentralStore) -> None:
        """Ann R5 F2 M2 promising; Ben R2 F1 M1 hibernating; Cat R5 F1 M1 new."""
        rows = {r[0]: r[2] for r in table(chain, "segments", "segments")}
        assert {k: v for k, v in rows.items() if v} == {"promising": 1, "hibernating": 1,
                                                         "new": 1}

    def test_lapsed_call_list(self, chain: CentralStore) -> None:
        """Away for more than 3 days: Ann, last at S2 then S1, coffee then bakery."""
        opts = reports.Options(since=date(2026, 1, 1), until=UNTIL, lapsed_after_days=3)
        assert table(chain, "lapsed", "call-list", opts) == [
            ("A", "Ann", "ann@example.org", "2026-03-26", 5, 4, "regular", "S2, S1",
             "coffee, bakery")]
        opts = reports.Options(since=date(2026, 1, 1), until=UNTIL, lapsed_after_days=5)
        assert table(chain, "lapsed", "call-list", opts) == []


class TestNps:
    def test_scores(self, chain: CentralStore) -> None:
        """6 answers: 3 promoters, 1 passive, 2 detractors: NPS round(100/6) = 17."""
        f = figures(chain, "nps")
        assert (f["NPS"], f["Answers"], f["Promoters (9-10)"], f["Passives (7-8)"],
                f["Detractors (0-6)"]) == (17, 6, 3, 1, 2)
        assert table(chain, "nps", "months") == [
            ("2026-01", 2, 2, 0, 0, 100), ("2026-02", 2, 0, 1, 1, -50),
            ("2026-03", 2, 1, 0, 1, 0)]
        assert table(chain, "nps", "stores") == [("S1", 4, 2, 1, 1, 25),
                                                 ("S2", 1, 0, 0, 1, -100)]
        assert table(chain, "nps", "products") == [("SERUM", 1, 1, 0, 0, 100)]
        assert [r[3] for r in table(chain, "nps", "comments")] == [
            "lovely", "queue too long", "great"]

    @given(st.integers(0, 10_000).flatmap(lambda n: st.tuples(
        st.just(n), st.integers(0, n)).flatmap(lambda t: st.tuples(
            st.just(t[0]), st.just(t[1]), st.integers(0, t[0] - t[1])))))
    def test_nps_stays_within_minus_100_and_100(self, counts: tuple[int, int, int]) -> None:
        answers, promoters, detractors = counts
        got = nps_of_counts(answers, promoters, detractors)
        assert got.promoters + got.passives + got.detractors == answers
        if not answers:
            assert got.score is None
        else:
            assert got.score is not None and -100 <= got.score <= 100

    def test_impossible_counts_are_refused(self) -> None:
        with pytest.raises(ValueError, match="cannot come from 3 answers"):
            nps_of_counts(3, 2, 2)
        with pytest.raises(ValueError):
            nps_of_counts(3, -1, 0)


class TestLiability:
    def test_outstanding_points_rate_and_schedule(self, chain: CentralStore) -> None:
        """Balances 44 + 30 + 5 = 79 (0.79); 114 earned, 25 redeemed (21.9%). Ann's 25
        redeemed take her 01-10 lot and 15 of 02-10: 5 expire 2027-02, 29 + 10 in
        2027-03 with Cat's 5; Ben's 30 left of 01-05 expire 2027-01."""
        f = figures(chain, "liability")
        assert (f["Outstanding points"], f["Their value"]) == (79, 79)
        assert (f["Points earned in the period"], f["Points redeemed in the period"]) == (
            114, 25)
        assert str(f["Redemption rate"]) == "21.9%"
        assert table(chain, "liability", "expiry") == [
            ("2027-01", 30, 30), ("2027-02", 5, 5), ("2027-03", 44, 44)]

    def test_spent_points_leave_the_newest_gains_held(self, chain: CentralStore) -> None:
        """Cat spends her 5 points, then earns 4: she holds those 4, earned 03-31."""
        tid, _ = chain.add_terminal("S1")
        chain.push(TerminalAuth(tid, "S1"), [
            EventIn("00000000-0000-7000-8000-000000000100", tid, 1, "C", "redeem", -5,
                    "P1/C2", d(3, 30, 12)),
            EventIn("00000000-0000-7000-8000-000000000101", tid, 2, "C", "earn", 4,
                    "P1/C3", d(3, 31))], clock_offset_ms=0)
        assert chain.balance("C") == 4
        assert [r for r in reports.held_lots(chain) if r[0] >= date(2026, 3, 27)] == [
            (date(2026, 3, 31), 4)]


class TestCost:
    def test_cost_and_extra_revenue(self, chain: CentralStore) -> None:
        """Cost: 114 - 10 = 104 points earned (1.04), no other discount. Members' average
        sale 10475 // 6 = 1745 < 2000 others': no basket uplift. Retained: 3 repeat visits x
        2000 x (1/3 - 0.25) / (1/3) = 1500."""
        f = figures(chain, "cost")
        assert (f["Program cost"], f["  discounts (not redemptions)"]) == (104, 0)
        assert (f["Extra revenue from members"], f["  basket uplift"],
                f["  retained repeat visits"]) == (1500, 0, 1500)
        assert f["Extra revenue less cost"] == 1396
        assert (f["Average member sale"], f["Average other sale"]) == (1745, 2000)
        # the replay: 6 member baskets net of refunds, 10+20+30+10+30+5 points
        assert table(chain, "cost", "rules") == [
            ("base", 6, 105, 0, 0, 105, 1.0, 104)]

    def test_uplift_method(self) -> None:
        """A repeat rate at or below the own return rate retains nothing."""
        up = uplift(members=4, repeat_members=1, repeat_visits=9, member_revenue=12000,
                    member_sales=10, anonymous_revenue=1000, anonymous_sales=1)
        assert (up.basket_uplift, up.retained) == (2000, 0)


class TestOthers:
    def test_settlement_needs_a_coalition(self, chain: CentralStore) -> None:
        r = reports.build(chain, "settlement", OPTS)
        assert not r.tables and "not a coalition" in str(r.notes[0])

    def test_settlement_of_a_coalition(self, chain: CentralStore) -> None:
        """S1 issued 10+20+29+40-10 = 89 points and took 25 as money; S2 issued 15. At 100
        pts = 1.00 and a 2% fee: S1 owes 89 + fee 2 (1.78 rounded), is owed 25: net -66;
        S2 owes 15, fee 0 (0.30 rounded): net -15."""
        chain.publish_program(PROGRAM.replace('name = "Test points"', 'name = "Town"')
                              + '[coalition]\nname = "Town"\nfee = 2\n'
                              '[[coalition.partners]]\nmerchant_id = "S1"\nname = "One"\n'
                              '[[coalition.partners]]\nmerchant_id = "S2"\nname = "Two"\n')
        assert table(chain, "settlement", "partners") == [
            ("S1", "One", 89, 25, 89, 25, 2, -66), ("S2", "Two", 15, 0, 15, 0, 0, -15)]

    def test_tags(self, chain: CentralStore) -> None:
        """3 taps, 2 first taps: 66.7%; SERUM 1 of 2 with an NPS of 100."""
        f = figures(chain, "tags")
        assert (f["Taps"], f["First taps (genuine)"], str(f["First-tap rate"])) == (
            3, 2, "66.7%")
        assert table(chain, "tags", "products") == [("SERUM", 2, 1, 0.5, 1, 100),
                                                    ("TOWEL", 1, 1, 1.0, 0, None)]

    def test_tags_with_a_store_filter_count_only_its_answers(
            self, chain: CentralStore) -> None:
        """A SERUM tag tapped at S2 and scored 0 there: the whole chain has 2 answers for
        SERUM (NPS 0), S1 alone its own 1 (100), in the tag report as in the NPS report."""
        with chain.engine.begin() as conn:
            conn.execute(insert(PhoneTap), [{
                "tap_id": "t4", "token_hash": None, "sku": "SERUM", "uid": "04CC",
                "result": "genuine", "counter": 1, "store_id": "S2", "at": d(3, 5),
                "day": date(2026, 3, 5)}])
            conn.execute(insert(PhoneNps), [{"uid": "04CC", "sku": "SERUM", "score": 0,
                                             "comment": "", "tap_id": "t4",
                                             "answered_at": d(3, 5, 11)}])
        s1 = reports.Options(since=date(2026, 1, 1), until=UNTIL, stores=("S1",))
        assert table(chain, "tags", "products")[0] == ("SERUM", 3, 2, 2 / 3, 2, 0)
        assert table(chain, "tags", "products", s1)[0] == ("SERUM", 2, 1, 0.5, 1, 100)
        assert table(chain, "nps", "products", s1) == [("SERUM", 1, 1, 0, 0, 100)]

    def test_cli_text_and_csv(self, chain: CentralStore, central_url: str) -> None:
        """`report nps` prints the figures; `--format csv` one row per figure and cell."""
        from pos_loyalty.server.cli import report

        out = CliRunner().invoke(report, ["nps", "--since", "2026-01-01", "--until",
                                          "2026-03-31", "--db", central_url])
        assert out.exit_code == 0, out.output
        assert "NPS               17" in out.output
        csv_out = CliRunner().invoke(report, ["tags", "--format", "csv", "--until",
                                              "2026-03-31", "--db", central_url])
        assert "tags,figures,First-tap rate,66.7%" in csv_out.output
        assert "tags,products,SERUM,2,1,50.0%,1,100" in csv_out.output
        bad = CliRunner().invoke(report, ["nps", "--since", "2026-04-01", "--until",
                                          "2026-03-31", "--db", central_url])
        assert bad.exit_code == 1 and "starts" in bad.output

    def test_cli_refuses_what_it_cannot_answer(self, chain: CentralStore, central_url: str,
                                               tmp_path: Path) -> None:
        """An unknown store, a period beyond the calendar or an output it cannot write is
        one line naming the problem (exit 1), never a traceback or an empty report."""
        from pos_loyalty.server.cli import report

        def run(*args: str) -> Result:
            return CliRunner().invoke(report, [*args, "--db", central_url])

        unknown = run("customers", "--store", "S1", "--store", "S9")
        assert unknown.exit_code == 1 and unknown.exception is not None
        assert "Error: no store 'S9'; stores are S1, S2" in unknown.output
        late = run("customers", "--until", "9999-12-31")
        assert late.exit_code == 1 and "ends too late (9999-12-31)" in late.output
        long = run("all", "--since", "0001-01-01", "--until", "2026-03-31")
        assert long.exit_code == 1 and "longer than 3660 days" in long.output
        assert run("customers", "--since", "2016-04-02", "--until", "2026-03-31"
                   ).exit_code == 0  # ten years
        unwritable = run("nps", "-o", str(tmp_path / "missing" / "nps.txt"))
        assert unwritable.exit_code == 1
        assert f"cannot write {tmp_path / 'missing' / 'nps.txt'}" in unwritable.output
        assert run("customers", "--store", "S2").exit_code == 0
        assert {*reports.NAMES, "all"} <= set(report.commands)

    def test_one_build_reads_shared_parts_once(self, chain: CentralStore) -> None:
        """Every report of a build shares the live program and the period's revenue: the
        whole page reads each no more often than the one report that needs it."""
        def statements(names: tuple[str, ...]) -> list[str]:
            seen: list[str] = []

            def log(conn: object, cursor: object, statement: str, *rest: object) -> None:
                seen.append(statement)

            event.listen(chain.engine, "before_cursor_execute", log)
            try:
                reports.build_all(chain, OPTS, names)
            finally:
                event.remove(chain.engine, "before_cursor_execute", log)
            return seen

        def programs(seen: list[str]) -> int:
            return sum(1 for x in seen if "FROM programs" in x)

        def revenue(seen: list[str]) -> int:
            return sum(1 for x in seen if "sum(sales.paid_total)" in x)

        every = statements(reports.NAMES)
        assert programs(every) == programs(statements(("liability",))) > 0
        assert revenue(every) == revenue(statements(("customers",))) == 1

    def test_every_word_of_every_report_is_in_hebrew(self, chain: CentralStore) -> None:
        """Titles, the period, figures, tables, charts and notes (with their values) all
        have a Hebrew translation: a new message left out of the catalog fails here."""
        from pos_loyalty.server.console.pages.reports import REPORT_LOCALE
        from pos_loyalty.server.console.web import HERE as CONSOLE_DIR
        from pos_loyalty.web import LOCALE_DIR as WEB_LOCALE
        from pos_loyalty.web.i18n import Catalogs

        he = Catalogs([REPORT_LOCALE, CONSOLE_DIR / "locale", WEB_LOCALE]).translations("he")
        untranslated: set[str] = set()
        for r in reports.build_all(chain, OPTS, reports.NAMES):
            words = [r.title, *(k.strip() for k, _ in r.figures)]
            words += [w for t in r.tables for w in (t.title, *t.columns)]
            words += [w for c in r.charts for w in (c.title, *(n for n, _ in c.series))]
            untranslated |= {w for w in words if he.gettext(w) == w}
            for phrase in (r.period, *r.notes):
                hebrew = he.gettext(phrase.message)
                untranslated |= {phrase.message} if hebrew == phrase.message else set()
                assert (hebrew % dict(phrase.values)).count("%") == str(phrase).count("%")
        assert untranslated == {"NPS"}  # the acronym, kept in Hebrew too
