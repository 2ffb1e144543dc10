"""The programs page over real HTTP: a candidate checked with its line errors, its diff and
dry run against the live version, published only after that dry run, scheduled, rolled back;
the roles' limits; the audit log."""

from __future__ import annotations

import contextlib
import functools
import operator
import re
from collections.abc import Callable
from datetime import timedelta

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pos_loyalty.rules import DEFAULT_PROGRAM
from pos_loyalty.server.console.accounts import AccountError
from pos_loyalty.terminal.service import TerminalService
from tests.conftest import Central, TerminalFactory
from tests.console.conftest import ConsoleClient, UserFactory, form_tokens
from tests.sales.test_sales_push import sell, sync

Clients = Callable[[], ConsoleClient]
PAGE = "/console/programs"
CHECK = f"{PAGE}/check"
PUBLISH = f"{PAGE}/publish"


def program(name: str, points: int) -> str:
    return (f'[program]\nname = "{name}"\n\n[[rule]]\nid = "base"\nkind = "earn"\n'
            f'label = "{points} pts per 1.00"\npoints = {points}\nper = 100\n')


SALES = "txn_id,time,sku,qty,unit_price,category,member_id\nT1,{t},A,1,1000,misc,M-1\n" \
        "T2,{t},B,2,500,misc,M-1\n"


def sales(central: Central) -> bytes:
    return SALES.format(t=(central.store.clock() - timedelta(days=1)).isoformat()).encode()


def check(c: ConsoleClient, body: str, sales_csv: bytes | None = None, *,
          store: str = "", as_file: bool = False) -> httpx.Response:
    """Post the check form (multipart, as the page's form does)."""
    token = form_tokens(c.http.get(PAGE).text)[CHECK]
    files: dict[str, tuple[str, bytes, str]] = {}
    data = {"csrf_token": token, "store": store, "body": "" if as_file else body}
    if as_file:
        files["program_file"] = ("p.toml", body.encode(), "application/toml")
    if sales_csv is not None:
        files["sales_file"] = ("sales.csv", sales_csv, "text/csv")
    return c.http.post(CHECK, data=data, files=files or {"none": ("", b"", "x")})


def publish_form(html: str) -> dict[str, str]:
    """The hidden fields of the publish form a check page offers."""
    form = html[html.index(f'action="{PUBLISH}"'):]
    form = form[:form.index("</form>")]
    return {n: v for n, v in re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', form)}


def unescape(value: str) -> str:
    import html

    return html.unescape(value)


class TestCheck:
    def test_line_errors_are_shown_beside_the_text(self, central: Central,
                                                   users: UserFactory,
                                                   client: Clients) -> None:
        """A bad value names its key and line, as the CLI prints them, beside the text and
        on the marked line; the text is kept; nothing is published and there is no
        publish form."""
        users("ada")
        c = client()
        c.sign_in("ada")
        bad = program("Bad", 2).replace("points = 2", 'points = "two"')
        page = check(c, bad, sales(central))
        assert page.status_code == 400
        assert "program:8: key &#39;rule[0].points&#39;: must be an integer" in page.text
        assert 'href="#body"' in page.text
        assert 'class="source__bad" id="line-8"' in page.text
        assert "points = &#34;two&#34;" in page.text  # the text is kept in the form
        assert f'action="{PUBLISH}"' not in page.text
        assert central.store.program_versions() == []

    def test_a_program_over_256_kb_is_refused_pasted_or_uploaded(
            self, central: Central, users: UserFactory, client: Clients) -> None:
        """The admin API's bound holds for the console's text area and its file alike."""
        users("ada")
        c = client()
        c.sign_in("ada")
        big = program("Big", 2) + "# " + "x" * (256 * 1024) + "\n"
        for as_file in (False, True):
            page = check(c, big, as_file=as_file)
            assert page.status_code == 400, as_file
            assert "A program may be at most 256 KB" in page.text, as_file
            assert f'action="{PUBLISH}"' not in page.text

    def test_diff_and_dry_run_against_the_live_version(self, central: Central,
                                                       users: UserFactory,
                                                       client: Clients) -> None:
        """Against live version 1 (1 pt), a 2 pt candidate uploaded as a file reads 'earn
        rate 1 -> 2' and the dry run of 20.00 of sales shows 40 points beside 20."""
        central.store.publish_program(program("One", 1))
        users("ada")
        c = client()
        c.sign_in("ada")
        page = check(c, program("Two", 2), sales(central), as_file=True)
        assert page.status_code == 200, page.text
        assert "The program Two is valid (rules: 1)." in page.text
        assert "Against version 1 (One), live for the whole chain." in page.text
        assert "earn rate 1 -&gt; 2 pts per 1.00" in page.text
        table = page.text[page.text.index('id="dry-run"'):]
        total = re.search(r'<tr class="total"><td>Total</td>(.*?)</tr>', table, re.S)
        assert total is not None
        cells = re.findall(r'<td class="num">([^<]*)</td>', total.group(1))
        assert cells[:2] == ["40", "20"]  # points new, live: 20.00 of sales
        assert cells[-1] == "+0.20"  # 20 more points at 1.00 per 100 points
        assert f'action="{PUBLISH}"' in page.text

    def test_without_a_file_the_dry_run_replays_central_sales(
            self, central: Central, terminals: TerminalFactory, users: UserFactory,
            client: Clients) -> None:
        """Sales made at a terminal (TerminalService, pushed by its sync client) are what
        the dry run replays when no file is given: those of the last N days, of the store
        chosen or the whole chain; a bad number of days is an error beside its field."""
        central.store.add_member("M-1", "Ann", card_id="C1")
        now = central.store.clock()
        for store, n, age in (("S-A", 2, 1), ("S-B", 1, 1), ("S-A", 1, 40)):
            t = terminals(store)
            sync(t)
            service = TerminalService(t.local, DEFAULT_PROGRAM,
                                      clock=functools.partial(operator.sub, now,
                                                              timedelta(days=age)))
            for i in range(n):
                sell(service, f"T{i}", lines=[{"sku": "A", "qty": 1, "unit_price": 1000,
                                               "category": "x"}])
            sync(t)
        users("ada")
        c = client()
        c.sign_in("ada")

        def dry_run(**fields: str) -> tuple[str, list[str]]:
            token = form_tokens(c.http.get(PAGE).text)[CHECK]
            r = c.http.post(CHECK, data={"csrf_token": token, "body": program("Two", 2),
                                         **fields}, files={"none": ("", b"", "x")})
            assert r.status_code == 200, r.text
            said = re.search(r'<p id="dry-run-source">(.*?)</p>', r.text)
            total = re.search(r'<tr class="total"><td>Total</td>(.*?)</tr>', r.text, re.S)
            assert said is not None and total is not None
            return said.group(1), re.findall(r'<td class="num">([^<]*)</td>', total.group(1))

        said, cells = dry_run()
        assert said.startswith("Sales of the last 30 days (the whole chain) replayed: 3,")
        assert cells[:2] == ["60", "30"]
        said, cells = dry_run(store="S-A", days="60")
        assert said.startswith("Sales of the last 60 days (S-A) replayed: 3,")
        assert cells[:2] == ["60", "30"]
        said, cells = dry_run(store="S-A")
        assert said.startswith("Sales of the last 30 days (S-A) replayed: 2,")
        assert cells[:2] == ["40", "20"]
        token = form_tokens(c.http.get(PAGE).text)[CHECK]
        for days in ("0", "367", "\u00b2", "1e3", "99999999999999999999"):  # "²" isdigit()
            bad = c.http.post(CHECK, data={"csrf_token": token, "body": program("Two", 2),
                                           "days": days}, files={"none": ("", b"", "x")})
            assert bad.status_code == 400 and 'href="#days"' in bad.text, days
            assert f'action="{PUBLISH}"' not in bad.text

    def test_bad_sales_file_names_its_line(self, central: Central, users: UserFactory,
                                           client: Clients) -> None:
        users("ada")
        c = client()
        c.sign_in("ada")
        page = check(c, program("Two", 2), b"txn_id,time,sku,qty,unit_price,category\n"
                                           b"T1,yesterday,A,1,1000,misc\n")
        assert page.status_code == 400
        assert "sales.csv:2" in page.text and "ISO 8601" in page.text


class TestPublish:
    def test_publish_after_dry_run_then_roll_back(self, central: Central,
                                                  users: UserFactory,
                                                  client: Clients) -> None:
        """The publish form of a dry run publishes that text chain-wide; the list shows it
        live; rolling back to version 1 makes a version 3 with version 1's text; the audit
        log has both."""
        central.store.publish_program(program("One", 1))
        users("ada")
        c = client()
        c.sign_in("ada")
        page = check(c, program("Two", 2), sales(central))
        hidden = {k: unescape(v) for k, v in publish_form(page.text).items()}
        done = c.http.post(PUBLISH, data={**hidden, "note": "double points"})
        assert done.status_code == 303 and done.headers["location"] == f"{PAGE}?done=published"
        live = central.store.live_program(None)
        assert live is not None and (live.version, live.name) == (2, "Two")
        assert live.body == program("Two", 2) and live.note == "double points"
        listing = c.http.get(done.headers["location"]).text
        assert "The program is published." in listing
        assert "Roll back to this version" in listing
        back = c.post_form(PAGE, f"{PAGE}/1/rollback", {})
        assert back.status_code == 303
        live = central.store.live_program(None)
        assert live is not None and (live.version, live.name, live.copied_from) == (3, "One", 1)
        audit = c.http.get("/console/audit").text
        assert "program.publish" in audit and "program.rollback" in audit

    def test_publish_refused_without_the_dry_run_of_that_text(
            self, central: Central, users: UserFactory, client: Clients) -> None:
        """A publish form whose text was changed after its dry run (or that has no proof)
        is refused and nothing is published."""
        users("ada")
        c = client()
        c.sign_in("ada")
        page = check(c, program("Two", 2), sales(central))
        hidden = {k: unescape(v) for k, v in publish_form(page.text).items()}
        changed = c.http.post(PUBLISH, data={**hidden, "body": program("Two", 9)})
        assert changed.status_code == 400
        assert "only after a dry run of that same text" in changed.text
        token = hidden["csrf_token"]
        bare = c.http.post(PUBLISH, data={"csrf_token": token, "body": program("Two", 2)})
        assert bare.status_code == 400
        assert central.store.program_versions() == []

    def test_scheduled_for_chosen_stores(self, central: Central, users: UserFactory,
                                         client: Clients) -> None:
        """A start time in the future makes a scheduled version for the chosen store: the
        store still runs the old one, the list says scheduled."""
        central.store.add_terminal("S-A")
        central.store.add_terminal("S-B")
        users("ada")
        c = client()
        c.sign_in("ada")
        page = check(c, program("Later", 3), sales(central))
        hidden = {k: unescape(v) for k, v in publish_form(page.text).items()}
        at = (central.store.clock() + timedelta(days=2)).strftime("%Y-%m-%d %H:%M")
        for past_the_calendar in ("0001-01-01T00:00+05:00", "9999-12-31 23:59-05:00"):
            far = c.http.post(PUBLISH, data={**hidden, "stores": "S-A", "at": past_the_calendar})
            assert far.status_code == 400 and 'href="#at"' in far.text, past_the_calendar
        bad = c.http.post(PUBLISH, data={**hidden, "stores": "S-A", "at": "tomorrow",
                                         "note": "later"})
        assert bad.status_code == 400 and 'href="#at"' in bad.text
        assert "2026-12-01 06:00 (UTC)" in bad.text  # the error, beside the field
        assert 'value="tomorrow"' in bad.text and 'value="later"' in bad.text
        assert 'value="S-A" checked' in bad.text
        hidden = {k: unescape(v) for k, v in publish_form(bad.text).items()}  # again
        done = c.http.post(PUBLISH, data={**hidden, "stores": "S-A", "at": at})
        assert done.headers["location"] == f"{PAGE}?done=scheduled"
        (v,) = central.store.program_versions()
        assert (v.stores, v.live, v.starts_at.strftime("%Y-%m-%d %H:%M")) == (("S-A",), False, at)
        assert central.store.live_program("S-A") is None
        listing = c.http.get(PAGE).text
        assert "scheduled" in listing and "The program is scheduled." not in listing


class TestRoles:
    def test_manager_publishes_only_to_own_stores(self, central: Central,
                                                  users: UserFactory,
                                                  client: Clients) -> None:
        """A manager of S-A is offered S-A only; the whole chain or S-B is refused (403)
        with a valid proof; S-A is published. A read-only user gets no check form and a
        403 on any post."""
        central.store.add_terminal("S-A")
        central.store.add_terminal("S-B")
        users("mia", "manager", ("S-A",))
        users("rex", "readonly")
        c = client()
        c.sign_in("mia")
        page = check(c, program("Mine", 2), sales(central))
        assert 'value="S-A"' in page.text
        assert 'name="stores" type="checkbox" value="S-B"' not in page.text
        hidden = {k: unescape(v) for k, v in publish_form(page.text).items()}
        none = c.http.post(PUBLISH, data=hidden)  # the whole chain is not theirs to choose
        assert none.status_code == 400 and 'href="#stores"' in none.text
        assert c.http.post(PUBLISH, data={**hidden, "stores": "S-B"}).status_code == 403
        assert central.store.program_versions() == []
        ok = c.http.post(PUBLISH, data={**hidden, "stores": "S-A"})
        assert ok.status_code == 303
        (v,) = central.store.program_versions()
        assert v.stores == ("S-A",)
        r = client()
        r.sign_in("rex")
        listing = r.http.get(PAGE).text
        assert f'action="{CHECK}"' not in listing and "Mine" in listing
        refused = r.http.post(CHECK, data={"csrf_token": r.token_for(CHECK),
                                           "body": program("X", 1)})
        assert refused.status_code == 403
        refused = r.http.post(f"{PAGE}/1/rollback",
                              data={"csrf_token": r.token_for(f"{PAGE}/1/rollback")})
        assert refused.status_code == 403
        assert len(central.store.program_versions()) == 1

    def test_manager_does_not_see_other_stores_versions(self, central: Central,
                                                        users: UserFactory,
                                                        client: Clients) -> None:
        central.store.publish_program(program("Bees", 2), stores=("S-B",))
        users("mia", "manager", ("S-A",))
        c = client()
        c.sign_in("mia")
        assert "Bees" not in c.http.get(PAGE).text
        assert c.http.get(f"{PAGE}/1").status_code == 404
        for number in ("nope", "\u00b2", "99999999999999999999"):  # "²" passes isdigit()
            assert c.http.get(f"{PAGE}/{number}").status_code == 404, number


class TestHebrew:
    def test_programs_and_fleet_pages_in_hebrew(self, central: Central, users: UserFactory,
                                                client: Clients) -> None:
        """A Hebrew browser gets the new pages right to left, in Hebrew."""
        users("ada")
        c = client()
        c.sign_in("ada")
        he = {"Accept-Language": "he-IL,he;q=0.9"}
        page = c.http.get(PAGE, headers=he).text
        assert 'dir="rtl"' in page and "<h1>תוכניות</h1>" in page and "פעילה עכשיו" in page
        fleet = c.http.get("/console/fleet", headers=he).text
        assert "<h1>מצב המסופים</h1>" in fleet and "מסופים: 0." in fleet
        c.http.headers.update(he)
        checked = check(c, program("Two", 2))
        assert checked.status_code == 200, checked.text
        assert "התוכנית Two תקינה (כללים: 1)." in checked.text
        assert "מכירות של 30 הימים האחרונים (כל הרשת) שהורצו מחדש: 0" in checked.text


class TestOutsideBytes:
    @settings(max_examples=25, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(program_bytes=st.one_of(st.binary(max_size=300),
                                   st.text(max_size=300).map(str.encode),
                                   st.sampled_from([b"[program\n", b"[[rule]]\nkind = 1\n",
                                                    b"\xff\xfe", b"[program]\nname = 3\n"])),
           sales_bytes=st.one_of(st.binary(max_size=300),
                                 st.text(max_size=300).map(str.encode),
                                 st.sampled_from([b"txn_id,time,sku,qty,unit_price,category\n"
                                                  b"T,2026-01-01,A,-1,x,c\n",
                                                  b'{"txn_id": 1}\n', b"{", b"\x00"])))
    def test_any_uploaded_files_get_a_page_never_a_server_error(
            self, central: Central, users: UserFactory, client: Clients,
            program_bytes: bytes, sales_bytes: bytes) -> None:
        """Whatever bytes come as the program file and the sales file, the answer is the
        check page (200, or 400 with the errors), never a 5xx, and nothing is published."""
        with contextlib.suppress(AccountError):  # made by the first example
            users("ada")
        c = client()
        c.sign_in("ada")
        token = form_tokens(c.http.get(PAGE).text)[CHECK]
        r = c.http.post(CHECK, data={"csrf_token": token, "body": ""}, files={
            "program_file": ("p.toml", program_bytes, "application/toml"),
            "sales_file": ("s.csv", sales_bytes, "text/csv")})
        assert r.status_code in (200, 400), r.text[:500]
        assert "Check a program" in r.text
        assert central.store.program_versions() == []
