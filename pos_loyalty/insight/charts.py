"""Charts as SVG drawn on the server with pygal: inline in the page, no script, no request.

pygal (a small, pure-Python SVG plotting library, maintained since 2012) draws SVG natively,
with real text an owner can select and a screen reader can read; matplotlib would bring a
large native dependency for the same few bar and line charts. pygal always writes a small
configuration ``<script>`` for its optional interactive layer: it is removed here, with the
comments, so a page holds no script at all. The ``<style>`` pygal puts inside each SVG is
kept; :func:`style_hashes` gives its CSP hashes so a page can allow exactly those styles.
"""

from __future__ import annotations

import base64
import hashlib
import re
import sys

import pygal
from pygal.style import Style

from pos_loyalty.insight.report import Chart

# pygal puts an import hook on sys.meta_path for its map plugins (``pygal.maps.*``), which we
# do not use; the hook lacks find_spec, so every later import in the process warns (an error
# under the tests' warning filter). Take it out again.
sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "PluginImportFixer"]

_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.DOTALL)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_STYLE = re.compile(r"<style\b[^>]*>(.*?)</style>", re.DOTALL)

STYLE = Style(
    background="transparent", plot_background="#ffffff", foreground="#0b0c0c",
    foreground_strong="#0b0c0c", foreground_subtle="#505a5f", opacity="0.9",
    opacity_hover="1", transition="0s",
    colors=("#1d70b8", "#f47738", "#00703c", "#d4351c", "#4c2c92", "#b58840"),
    font_family="system-ui, sans-serif", title_font_size=18, label_font_size=12,
    major_label_font_size=12, legend_font_size=13, value_font_size=11)


def svg(chart: Chart, *, rtl: bool = False) -> str:
    """The chart as an inline ``<svg>`` element: no script, no comment, no external link."""
    kind = pygal.Line if chart.kind == "line" else pygal.Bar
    many = len(chart.labels) > 8
    c = kind(style=STYLE, js=[], disable_xml_declaration=True, width=800, height=360,
             show_legend=len(chart.series) > 1, legend_at_bottom=True, x_label_rotation=
             (30 if many else 0), truncate_label=-1, print_values=not many and
             chart.kind == "bar", show_y_guides=True, margin=16, inverse_y_axis=False,
             explicit_size=False)
    c.title = chart.title
    c.x_labels = list(reversed(chart.labels)) if rtl else chart.labels
    for name, values in chart.series:
        c.add(name, list(reversed(values)) if rtl else values)
    raw = c.render(is_unicode=True)
    out = _COMMENT.sub("", _SCRIPT.sub("", raw))
    # the browser decodes "&gt;" in an SVG style before it hashes it for the CSP; write the
    # CSS as it will be read (pygal's CSS holds no "<" or "&" of its own)
    out = _STYLE.sub(lambda m: m.group(0).replace("&gt;", ">"), out)
    # the (script-driven) tooltip layer's one style attribute, as a presentation attribute
    out = out.replace('style="opacity: 0"', 'opacity="0"')
    return out.replace("<svg ", f'<svg role="img" aria-label="{_attr(chart.title)}" ', 1)


def _attr(text: str) -> str:
    return (text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
            .replace(">", "&gt;"))


def style_hashes(html: str) -> list[str]:
    """CSP source expressions (``'sha256-...'``) for every inline ``<style>`` in ``html``."""
    out = []
    for body in _STYLE.findall(html):
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        out.append(f"'sha256-{digest}'")
    return sorted(set(out))
