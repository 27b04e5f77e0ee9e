"""A series of readings as a person reads it: the latest as a table, a small chart per measure.

The wallet's page for a series (health observations from a wearable, or typed in) shows
the newest readings in words, never JSON: what was measured in the catalog's words
("Heart rate"), the reading, its unit, and when, on London's clock (`wallet.clock`). Each
measure with whole-number readings gets a line chart drawn on the server as inline SVG
(no script, no inline style: the Content-Security-Policy allows neither), named by its
`<title>` and `<desc>` and scaled to the width of the page, so nothing scrolls sideways
on a phone. The table beside it holds the same numbers.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from markupsafe import Markup, escape

from vault.domain.categories import Category
from wallet.clock import when

__all__ = ["Chart", "Reading", "SeriesView", "line_chart", "series_view"]

#: How many of the newest readings the table shows, and each chart at most.
TABLE_ROWS = 50
CHART_POINTS = 50

_LINE = "#1d70b8"  # the transparency charts' palette: >= 3:1 against white
_TEXT = "#0b0c0c"
_AXIS = "#6f777b"
_W, _H, _PAD_X, _PAD_Y = 320.0, 120.0, 44.0, 18.0
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True, slots=True)
class Reading:
    """One row of the table."""

    measure: str
    value: str
    unit: str
    taken: str


@dataclass(frozen=True, slots=True)
class Chart:
    """One measure's chart, and the words that name it."""

    measure: str
    unit: str
    svg: Markup
    count: int


@dataclass(frozen=True, slots=True)
class SeriesView:
    readings: tuple[Reading, ...]
    charts: tuple[Chart, ...]
    #: Readings held in the batches looked at beyond the table's rows.
    more: int


def _instant(item: Mapping[str, Any]) -> datetime | None:
    at = item.get("at")
    if not isinstance(at, str):
        return None
    try:
        found = datetime.fromisoformat(at)
    except ValueError:
        return None
    return found if found.tzinfo is not None else None


def _xml(text: str) -> Markup:
    return escape(_NOT_XML.sub("", text))


def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def line_chart(points: Sequence[tuple[datetime, int]], *, chart_id: str, title: str,
               description: str) -> Markup:
    """`points` (oldest first) as a line over time, the lowest and highest values and
    the first and last times written on the axes."""
    low, high = min(v for _, v in points), max(v for _, v in points)
    start, end = points[0][0], points[-1][0]
    span = (end - start).total_seconds() or 1.0
    rise = (high - low) or 1

    def x(at: datetime) -> float:
        return _PAD_X + (_W - 2 * _PAD_X) * ((at - start).total_seconds() / span
                                             if end > start else 0.5)

    def y(v: int) -> float:
        return _H - _PAD_Y - (_H - 2 * _PAD_Y) * ((v - low) / rise if high > low else 0.5)

    coords = " ".join(f"{_num(x(at))},{_num(y(v))}" for at, v in points)
    parts = [
        f'<svg class="series-chart" role="img" aria-labelledby="{chart_id}-t {chart_id}-d" '
        f'viewBox="0 0 {_num(_W)} {_num(_H)}" width="100%" preserveAspectRatio="xMidYMid meet" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-t">{_xml(title)}</title>',
        f'<desc id="{chart_id}-d">{_xml(description)}</desc>',
        f'<line x1="{_num(_PAD_X)}" y1="{_num(_H - _PAD_Y)}" x2="{_num(_W - _PAD_X)}" '
        f'y2="{_num(_H - _PAD_Y)}" stroke="{_AXIS}" stroke-width="1"/>',
        f'<text x="{_num(_PAD_X - 4)}" y="{_num(y(high) + 5)}" text-anchor="end" '
        f'font-size="12" fill="{_TEXT}">{high}</text>',
    ]
    if high != low:
        parts.append(f'<text x="{_num(_PAD_X - 4)}" y="{_num(y(low) + 5)}" text-anchor="end" '
                     f'font-size="12" fill="{_TEXT}">{low}</text>')
    parts.append(f'<polyline points="{coords}" fill="none" stroke="{_LINE}" '
                 f'stroke-width="2"/>')
    parts += [f'<circle cx="{_num(x(at))}" cy="{_num(y(v))}" r="3" fill="{_LINE}"/>'
              for at, v in points]
    parts.append(f'<text x="{_num(_PAD_X)}" y="{_num(_H - 2)}" font-size="11" '
                 f'fill="{_TEXT}">{_xml(when(start))}</text>')
    if end > start:
        parts.append(f'<text x="{_num(_W - _PAD_X)}" y="{_num(_H - 2)}" text-anchor="end" '
                     f'font-size="11" fill="{_TEXT}">{_xml(when(end))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text in it is escaped above


def _charts(category: Category, items: Sequence[Mapping[str, Any]]) -> tuple[Chart, ...]:
    by_kind: dict[str, list[tuple[datetime, int, str]]] = {}
    for item in items:
        at, value, kind, unit = (_instant(item), item.get("value"), item.get("kind"),
                                 item.get("unit"))
        if at is None or type(value) is not int or not isinstance(kind, str) \
                or not isinstance(unit, str):
            continue
        by_kind.setdefault(kind, []).append((at, value, unit))
    charts = []
    for n, (kind, found) in enumerate(sorted(by_kind.items())):
        # One unit to a chart: the measure's most usual one.
        unit = Counter(u for _, _, u in found).most_common(1)[0][0]
        points = sorted((at, v) for at, v, u in found if u == unit)[-CHART_POINTS:]
        measure = category.code_label("kind", kind)
        description = (f"{len(points)} readings of {measure.lower()} in {unit}, from "
                       f"{when(points[0][0])} to {when(points[-1][0])}: lowest "
                       f"{min(v for _, v in points)}, highest {max(v for _, v in points)}.")
        charts.append(Chart(measure, unit, line_chart(
            points, chart_id=f"chart-{n}", title=f"{measure} ({unit})",
            description=description), len(points)))
    return tuple(charts)


def _words(value: Any) -> str:
    return str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""


def series_view(category: Category, items: Sequence[Any]) -> SeriesView:
    """The newest readings of `items` (any order) as rows, newest first, and a chart per
    measure. Items of another shape are left out, never shown raw."""
    usable = [i for i in items if isinstance(i, Mapping) and _instant(i) is not None
              and isinstance(i.get("kind"), str)]
    newest = sorted(usable, key=lambda i: _instant(i) or datetime.min, reverse=True)
    rows = tuple(Reading(category.code_label("kind", i["kind"]), _words(i.get("value")),
                         _words(i.get("unit")), when(_instant(i)))  # type: ignore[arg-type]
                 for i in newest[:TABLE_ROWS])
    return SeriesView(rows, _charts(category, usable), max(0, len(newest) - TABLE_ROWS))
