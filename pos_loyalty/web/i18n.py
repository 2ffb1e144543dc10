"""The visitor's language from ``Accept-Language``, and the compiled gettext catalogs.

Catalogs are Babel/gettext ``.mo`` files under ``<dir>/<locale>/LC_MESSAGES/messages.mo``;
several directories (the shared pages', then an application's own) merge into one
translation per locale, the application's winning where both translate a string.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.core import negotiate_locale
from babel.support import NullTranslations, Translations

DEFAULT_LOCALE = "en"
MAX_HEADER = 512  # longer Accept-Language headers are read only this far
MAX_RANGES = 16


def parse_accept_language(header: str | None) -> list[str]:
    """Language ranges of an ``Accept-Language`` header, best first (RFC 9110 q-values).

    A range with q=0 is refused by the client and left out; malformed parts are skipped;
    the header is bounded, so a hostile one costs nothing.
    """
    if not header:
        return []
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header[:MAX_HEADER].split(",")[:MAX_RANGES]):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip()
        if not tag or len(tag) > 35 or not all(c.isalnum() or c in "-_*" for c in tag):
            continue
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                continue
            if not 0.0 <= q <= 1.0:
                continue
        if q > 0:
            ranked.append((-q, index, tag))
    return [tag for _, _, tag in sorted(ranked)]


@dataclass(frozen=True)
class Language:
    """A negotiated language: its code, its text direction and its own name."""

    code: str

    @cached_property
    def locale(self) -> Locale:
        return Locale.parse(self.code)

    @property
    def direction(self) -> str:
        """``rtl`` or ``ltr``, for the page's ``dir`` attribute."""
        return "rtl" if self.locale.character_order == "right-to-left" else "ltr"

    @property
    def name(self) -> str:
        return str(self.locale.get_display_name(self.locale) or self.code)


class Catalogs:
    """Compiled catalogs of one or more directories, merged per locale and cached."""

    def __init__(self, dirs: Sequence[Path], *, default: str = DEFAULT_LOCALE) -> None:
        self.dirs = list(dirs)
        self.default = default
        found = {default}
        for d in self.dirs:
            if d.is_dir():
                found.update(p.parent.parent.name for p in d.glob("*/LC_MESSAGES/messages.mo"))
        self.available = sorted(found)
        self._cache: dict[str, NullTranslations] = {}

    def negotiate(self, accept_language: str | None) -> Language:
        """The best available language for the header (the default when none fits)."""
        preferred = [t.replace("_", "-") for t in parse_accept_language(accept_language)]
        try:
            code = negotiate_locale(preferred, self.available, sep="-")
        except (ValueError, UnknownLocaleError):
            code = None
        return Language(code or self.default)

    def translations(self, code: str) -> NullTranslations:
        """Merged translations for ``code``; the null translation for the default locale."""
        if code not in self._cache:
            merged: NullTranslations = NullTranslations()
            if code != self.default:
                # the last directory given is the base; earlier ones override it
                for d in reversed(self.dirs):
                    loaded = Translations.load(str(d), [code])
                    if isinstance(loaded, Translations):
                        if isinstance(merged, Translations):
                            merged.merge(loaded)
                        else:
                            merged = loaded
            self._cache[code] = merged
        return self._cache[code]


def N_(message: str) -> str:
    """Mark a message for the catalog where it is defined; it is translated where shown."""
    return message
