"""The phone pages' Hebrew catalog is complete for what the templates and code say."""

from __future__ import annotations

from typing import Any

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from pos_loyalty.server.phone.router import HERE as PHONE_DIR

METHODS = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
KEYWORDS: dict[str, Any] = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}


def test_every_phone_message_has_a_hebrew_translation() -> None:
    """Every message extracted from the phone templates and code is translated in Hebrew
    (so a new string cannot ship in English on a Hebrew page)."""
    said = {msg if isinstance(msg, str) else msg[0]
            for _f, _l, msg, _c, _x in extract_from_dir(str(PHONE_DIR), METHODS, KEYWORDS)}
    with (PHONE_DIR / "locale/he/LC_MESSAGES/messages.po").open("rb") as f:
        translated = {m.id for m in read_po(f) if m.id and m.string}
    assert said and said - translated == set()
