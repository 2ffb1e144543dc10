"""The errors of a submitted form: one message per field, in page order, for the summary."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass
class FormErrors:
    """Field id -> message. The summary at the top links each one to its field (``#id``)."""

    messages: dict[str, str] = field(default_factory=dict)

    def add(self, field_id: str, message: str) -> None:
        self.messages.setdefault(field_id, message)  # the first problem of a field is shown

    def get(self, field_id: str) -> str | None:
        return self.messages.get(field_id)

    def __bool__(self) -> bool:
        return bool(self.messages)

    def items(self) -> list[tuple[str, str]]:
        return list(self.messages.items())


def text(form: dict[str, str], name: str, *, limit: int = 200) -> str:
    """A text field without control characters (a NUL is refused by PostgreSQL, the rest
    is never meant), stripped and cut to ``limit`` characters (absent = empty)."""
    return _CONTROLS.sub("", form.get(name, "")).strip()[:limit]
