"""A report as plain text (aligned columns) or CSV. Pure: returns strings."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from pos_loyalty.insight.report import Cell, Report, Table


def cell(value: Cell) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and type(value) is float:
        return f"{value:g}"
    return str(value)


def _table_text(t: Table) -> list[str]:
    cells = [list(t.columns)] + [[cell(v) for v in row] for row in t.rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(t.columns))]
    out = [t.title]
    if not t.rows:
        return [*out, "  (none)"]
    for n, row in enumerate(cells):
        out.append("  " + "  ".join(
            v.ljust(w) if i == 0 or not _numeric(v) else v.rjust(w)
            for i, (v, w) in enumerate(zip(row, widths, strict=True))).rstrip())
        if n == 0:
            out.append("  " + "  ".join("-" * w for w in widths))
    return out


def _numeric(text: str) -> bool:
    return bool(text) and (text[0].isdigit() or text[0] == "-") and \
        all(c.isdigit() or c in ",.-%" for c in text)


def text(reports: Sequence[Report]) -> str:
    out: list[str] = []
    for r in reports:
        out.append(f"{r.title} ({r.period})")
        out.append("=" * len(out[-1]))
        if r.figures:
            width = max(len(k) for k, _ in r.figures)
            out += [f"{k.ljust(width)}  {cell(v)}" for k, v in r.figures]
        for t in r.tables:
            out += ["", *_table_text(t)]
        if r.notes:
            out += ["", *map(str, r.notes)]
        out.append("")
    return "\n".join(out)


def csv_text(reports: Sequence[Report]) -> str:
    """Every figure and table as CSV: ``report,table,<columns...>`` header rows, then data
    rows, so one file holds a whole report and a spreadsheet can filter it."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for r in reports:
        w.writerow([r.name, "figures", "figure", "value"])
        for k, v in r.figures:
            w.writerow([r.name, "figures", k.strip(), cell(v)])
        for t in r.tables:
            w.writerow([r.name, t.key or t.title, *t.columns])
            for row in t.rows:
                w.writerow([r.name, t.key or t.title, *(cell(v) for v in row)])
    return buf.getvalue()
