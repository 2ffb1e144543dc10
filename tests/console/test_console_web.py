"""The shared page package: language negotiation, catalogs, CSRF tokens, templates."""

from __future__ import annotations

from pathlib import Path

from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from hypothesis import given
from hypothesis import strategies as st

from pos_loyalty import web
from pos_loyalty.server.console.web import HERE as CONSOLE_DIR
from pos_loyalty.web import csrf
from pos_loyalty.web.forms import FormErrors
from pos_loyalty.web.i18n import Catalogs, Language, parse_accept_language
from pos_loyalty.web.pages import Pages

CATALOG_DIRS = [CONSOLE_DIR / "locale", web.LOCALE_DIR]


class TestAcceptLanguage:
    def test_ranges_are_ordered_by_quality_then_position(self) -> None:
        """q-values rank the ranges; equal ones keep the header's order; q=0 is dropped."""
        header = "fr;q=0.5, he-IL, en;q=0.8, de;q=0, es"
        assert parse_accept_language(header) == ["he-IL", "es", "en", "fr"]

    def test_malformed_parts_are_skipped(self) -> None:
        """A bad q-value or a tag with odd characters is ignored, the rest is used."""
        assert parse_accept_language("en;q=x, <he>, he;q=2, fr") == ["fr"]

    @given(st.text(max_size=2000))
    def test_any_header_parses_to_a_bounded_list(self, header: str) -> None:
        """Whatever a client sends, parsing returns at most 16 short ranges and never raises."""
        out = parse_accept_language(header)
        assert len(out) <= 16 and all(len(t) <= 35 for t in out)

    def test_hebrew_is_chosen_for_a_hebrew_browser(self) -> None:
        """he-IL negotiates to the Hebrew catalog, written right to left."""
        lang = Catalogs(CATALOG_DIRS).negotiate("he-IL,he;q=0.9,en;q=0.8")
        assert lang.code == "he" and lang.direction == "rtl"

    def test_unknown_language_falls_back_to_english(self) -> None:
        """A browser asking only for French gets English, left to right."""
        catalogs = Catalogs(CATALOG_DIRS)
        assert catalogs.negotiate("fr-CH, fr;q=0.9") == Language("en")
        assert catalogs.negotiate(None).direction == "ltr"


class TestCatalogs:
    def test_compiled_catalogs_match_their_sources(self) -> None:
        """Each committed .mo holds exactly the translations of its .po (none left stale)."""
        pos = sorted(Path(web.__file__).parents[1].rglob("locale/*/LC_MESSAGES/messages.po"))
        assert len(pos) >= 2
        for po_path in pos:
            with po_path.open("rb") as f:
                po = {m.id: m.string for m in read_po(f) if m.id and m.string}
            with po_path.with_suffix(".mo").open("rb") as f:
                mo = {m.id: m.string for m in read_mo(f) if m.id}
            assert mo == po, po_path

    def test_every_message_has_a_hebrew_translation(self) -> None:
        """No message of the templates or the code is left untranslated in Hebrew."""
        for d in CATALOG_DIRS:
            with (d / "he/LC_MESSAGES/messages.po").open("rb") as f:
                missing = [m.id for m in read_po(f) if m.id and not m.string]
            assert missing == [], d

    def test_application_catalog_wins_over_the_shared_one(self, tmp_path: Path) -> None:
        """Where both catalogs translate a message, the application's (listed first) is used."""
        from babel.messages.catalog import Catalog
        from babel.messages.mofile import write_mo

        for name, text in (("app", "mine"), ("shared", "theirs")):
            cat = Catalog(locale="he")
            cat.add("Sign in", text)
            cat.add(f"only {name}", name)
            out = tmp_path / name / "he/LC_MESSAGES"
            out.mkdir(parents=True)
            with (out / "messages.mo").open("wb") as f:
                write_mo(f, cat)
        t = Catalogs([tmp_path / "app", tmp_path / "shared"]).translations("he")
        assert t.gettext("Sign in") == "mine"
        assert (t.gettext("only app"), t.gettext("only shared")) == ("app", "shared")


class TestCsrf:
    def test_token_opens_only_its_own_form_of_its_own_session(self) -> None:
        """A token is valid for the form and session it was made for, and nothing else."""
        a, b = csrf.new_secret(), csrf.new_secret()
        tok = csrf.token(a, "/console/users")
        assert csrf.valid(a, "/console/users", tok)
        assert not csrf.valid(a, "/console/stores", tok)
        assert not csrf.valid(b, "/console/users", tok)
        assert not csrf.valid(a, "/console/users", None)
        assert not csrf.valid(a, "/console/users", tok[:-1] + ("0" if tok[-1] != "0" else "1"))


class TestTemplates:
    def test_values_are_escaped(self) -> None:
        """Text from the database cannot inject markup: autoescape is on."""
        pages = Pages([CONSOLE_DIR / "templates"], Catalogs(CATALOG_DIRS))
        env = pages.environment("en")
        html = env.from_string("<p>{{ name }}</p>").render(name="<script>x</script>")
        assert html == "<p>&lt;script&gt;x&lt;/script&gt;</p>"

    def test_error_summary_links_each_error_to_its_field(self) -> None:
        """The summary lists every error as a link to #field; the field shows its own error,
        keeps the value and points aria-describedby at the message."""
        errors = FormErrors()
        errors.add("store_id", "Enter a store id")
        errors.add("store_id", "second problem of the same field is not shown")
        pages = Pages([], Catalogs(CATALOG_DIRS))
        env = pages.environment("en")
        html = env.from_string(
            '{% import "web/macros.html" as m %}{{ m.error_summary(errors) }}'
            '{{ m.input("store_id", "Store id", "S<1>", errors) }}').render(errors=errors)
        assert '<a href="#store_id">Enter a store id</a>' in html
        assert "second problem" not in html
        assert 'id="store_id-error"' in html and 'aria-describedby="store_id-error"' in html
        assert 'value="S&lt;1&gt;"' in html

    def test_hebrew_page_is_right_to_left_and_translated(self) -> None:
        """The base layout in Hebrew has dir=rtl, lang=he and the translated skip link."""
        pages = Pages([], Catalogs(CATALOG_DIRS), globals={"home_url": "/"})
        html = pages.environment("he").get_template("web/base.html").render(
            lang=Language("he"), errors=None, notice=None)
        assert '<html lang="he" dir="rtl">' in html
        assert "דילוג לתוכן הראשי" in html

    def test_stylesheet_uses_logical_properties_only(self) -> None:
        """No physical left/right in the stylesheet, so dir=rtl mirrors every page."""
        css = (web.STATIC_DIR / "web.css").read_text()
        for physical in ("margin-left", "margin-right", "padding-left", "padding-right",
                         "text-align: left", "text-align: right", "border-left",
                         "border-right", "float:", " left:", " right:"):
            assert physical not in css, physical
