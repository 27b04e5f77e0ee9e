"""Bar charts as inline SVG, drawn on the server: no script, no CDN, no inline style.

Each chart is one `<svg role="img">` named by its `<title>` and `<desc>` (the page
puts the same numbers in a table beside it). A bar whose number is hidden is drawn as
what is known: solid up to `low`, a dashed box up to `high` (never as zero), with its
text ("fewer than 10") beside it. Colours are presentation attributes, which a
Content-Security-Policy without 'unsafe-inline' allows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

__all__ = ["Bar", "column_chart", "row_chart"]

#: Palette shared with the page (WCAG 2.2: bars >= 3:1 against white, text >= 4.5:1).
BAR = "#1d70b8"
RANGE = "#505a5f"
TEXT = "#0b0c0c"
AXIS = "#6f777b"

_FONT = 16
#: A hidden number's dashed box stays visible however small its range is drawn.
_MIN_RANGE = 4.0
_WIDTH = 400


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar: certainly `low`, at most `high` (equal when the number is exact)."""

    label: str
    low: int
    high: int
    #: The number as people read it: "1,203", "fewer than 10", "201 to 209".
    text: str

    def __post_init__(self) -> None:
        if not 0 <= self.low <= self.high:
            raise ValueError(f"bar {self.label!r}: need 0 <= low <= high")

    @property
    def exact(self) -> bool:
        return self.low == self.high


def _num(x: float) -> str:
    """A coordinate: short, and the same on every platform."""
    return f"{x:.1f}".rstrip("0").rstrip(".")


#: Characters XML 1.0 cannot hold (§2.2): most controls, lone surrogates, U+FFFE/U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml(text: str) -> Markup:
    """Escaped, and without what XML cannot hold, so the SVG is always well formed."""
    return escape(_NOT_XML.sub("", text))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _open(chart_id: str, title: str, description: str, height: float) -> list[str]:
    cid = _xml(chart_id)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {_WIDTH} {_num(height)}" width="{_WIDTH}" height="{_num(height)}" '
        f'aria-labelledby="{cid}-title {cid}-desc" id="{cid}" '
        f'font-family="system-ui, sans-serif" font-size="{_FONT}">',
        f'<title id="{cid}-title">{_xml(title)}</title>',
        f'<desc id="{cid}-desc">{_xml(description)}</desc>',
    ]


def _rects(x: float, y_low: float, w: float, h_low: float, y_high: float, h_range: float,
           bar: Bar) -> list[str]:
    """The solid part and, for a hidden number, the dashed box of what it may be."""
    out = []
    if h_low > 0:
        out.append(f'<rect class="bar" x="{_num(x)}" y="{_num(y_low)}" width="{_num(w)}" '
                   f'height="{_num(h_low)}" fill="{BAR}"/>')
    if not bar.exact:
        out.append(f'<rect class="bar-range" x="{_num(x)}" y="{_num(y_high)}" '
                   f'width="{_num(w)}" height="{_num(max(h_range, _MIN_RANGE))}" fill="none" '
                   f'stroke="{RANGE}" stroke-width="2" stroke-dasharray="4 3"/>')
    return out


def _scale(bars: Sequence[Bar]) -> int:
    return max([1, *(b.high for b in bars)])


def row_chart(bars: Sequence[Bar], *, chart_id: str, title: str, description: str) -> Markup:
    """Horizontal bars, one row each: the label above, the bar and its number below."""
    row, bar_h, left, right = 48.0, 18.0, 4.0, 130.0
    top = 4.0
    height = top + row * max(len(bars), 1) + 4
    span = _WIDTH - left - right
    top_value = _scale(bars)
    out = _open(chart_id, title, description, height)
    for i, bar in enumerate(bars):
        y = top + i * row
        bar_y = y + 24
        w_low, w_high = span * bar.low / top_value, span * bar.high / top_value
        out.append(f"<g><title>{_xml(bar.label)}: {_xml(bar.text)}</title>")
        out.append(f'<text x="{_num(left)}" y="{_num(y + 16)}" fill="{TEXT}">'
                   f"{_xml(_clip(bar.label, 40))}</text>")
        if w_low > 0:
            out.append(f'<rect class="bar" x="{_num(left)}" y="{_num(bar_y)}" '
                       f'width="{_num(w_low)}" height="{_num(bar_h)}" fill="{BAR}"/>')
        if not bar.exact:
            out.append(f'<rect class="bar-range" x="{_num(left + w_low)}" y="{_num(bar_y)}" '
                       f'width="{_num(max(w_high - w_low, _MIN_RANGE))}" height="{_num(bar_h)}" '
                       f'fill="none" stroke="{RANGE}" stroke-width="2" '
                       'stroke-dasharray="4 3"/>')
        out.append(f'<text x="{_num(left + max(w_high, w_low) + 6)}" y="{_num(bar_y + 14)}" '
                   f'fill="{TEXT}">{_xml(bar.text)}</text></g>')
    out.append(f'<line x1="{_num(left)}" x2="{_num(left)}" y1="{_num(top + 20)}" '
               f'y2="{_num(height - 4)}" stroke="{AXIS}"/>')
    out.append("</svg>")
    return Markup("\n".join(out))  # noqa: S704 - every text above went through _xml()


def column_chart(bars: Sequence[Bar], *, chart_id: str, title: str,
                 description: str) -> Markup:
    """Vertical bars (a time series): labels under the bars, numbers above them.

    A label's words go on separate lines ("Nov 2026" as "Nov" over "2026"); numbers
    turn upright when the columns are too narrow to hold them side by side.
    """
    n = max(len(bars), 1)
    left, right, plot_h, label_h = 4.0, 4.0, 170.0, 2 * (_FONT + 3) + 6
    slot = (_WIDTH - left - right) / n
    upright = max([0, *(len(b.text) for b in bars)]) * _FONT * 0.6 > slot - 4
    value_h = (max([0, *(len(b.text) for b in bars)]) * _FONT * 0.6 + 8) if upright else 24.0
    top = value_h
    base = top + plot_h
    height = base + label_h
    top_value = _scale(bars)
    out = _open(chart_id, title, description, height)
    for i, bar in enumerate(bars):
        x = left + i * slot + slot * 0.15
        w = slot * 0.7
        h_low, h_high = plot_h * bar.low / top_value, plot_h * bar.high / top_value
        out.append(f"<g><title>{_xml(bar.label)}: {_xml(bar.text)}</title>")
        out.extend(_rects(x, base - h_low, w, h_low, base - h_high, h_high - h_low, bar))
        cx, above = x + w / 2, base - max(h_high, h_low) - 6
        if upright:
            out.append(f'<text x="{_num(cx)}" y="{_num(above)}" fill="{TEXT}" '
                       f'transform="rotate(-90 {_num(cx)} {_num(above)})" '
                       f'dominant-baseline="middle">{_xml(bar.text)}</text>')
        else:
            out.append(f'<text x="{_num(cx)}" y="{_num(above)}" fill="{TEXT}" '
                       f'text-anchor="middle">{_xml(bar.text)}</text>')
        lines = bar.label.split(" ")[:2]
        for j, word in enumerate(lines):
            out.append(f'<text x="{_num(cx)}" y="{_num(base + 18 + j * (_FONT + 3))}" '
                       f'fill="{TEXT}" text-anchor="middle">{_xml(_clip(word, 8))}</text>')
        out.append("</g>")
    out.append(f'<line x1="{_num(left)}" x2="{_num(_WIDTH - right)}" y1="{_num(base)}" '
               f'y2="{_num(base)}" stroke="{AXIS}"/>')
    out.append("</svg>")
    return Markup("\n".join(out))  # noqa: S704 - every text above went through _xml()
