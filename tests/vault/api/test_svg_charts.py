"""Server-rendered SVG bar charts: well-formed, named for screen readers, escaped, and
hidden numbers drawn as what is known (never as zero)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.api.svg_charts import Bar, column_chart, row_chart

SVG = "{http://www.w3.org/2000/svg}"


def parse(markup: str) -> ET.Element:
    return ET.fromstring(markup)


def rects(svg: ET.Element, cls: str) -> list[ET.Element]:
    return [r for r in svg.iter(f"{SVG}rect") if r.get("class") == cls]


def texts(svg: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in svg.iter(f"{SVG}text")]


BARS = [Bar("Approved", 120, 120, "120"), Bar("Denied", 0, 0, "0"),
        Bar("Paused", 1, 9, "fewer than 10")]


@pytest.mark.parametrize("chart", [row_chart, column_chart])
def test_chart_is_an_image_named_by_its_title_and_description(chart) -> None:  # type: ignore[no-untyped-def]
    svg = parse(chart(BARS, chart_id="c1", title="Grants by state", description="One bar each"))
    assert svg.get("role") == "img"
    assert svg.get("aria-labelledby") == "c1-title c1-desc"
    title, desc = svg.find(f"{SVG}title"), svg.find(f"{SVG}desc")
    assert title is not None and title.get("id") == "c1-title" and title.text == "Grants by state"
    assert desc is not None and desc.get("id") == "c1-desc" and desc.text == "One bar each"
    assert next(iter(svg)) is title  # the first child names the image
    assert svg.get("style") is None and all(e.get("style") is None for e in svg.iter())


@pytest.mark.parametrize("chart", [row_chart, column_chart])
def test_hidden_numbers_are_dashed_boxes_with_their_words(chart) -> None:  # type: ignore[no-untyped-def]
    svg = parse(chart(BARS, chart_id="c", title="t", description="d"))
    assert len(rects(svg, "bar")) == 2  # 120, and the certain 1 of "fewer than 10"
    (dashed,) = rects(svg, "bar-range")
    assert dashed.get("stroke-dasharray") and dashed.get("fill") == "none"
    shown = texts(svg)
    assert "fewer than 10" in shown and "0" in shown and "120" in shown
    # Each bar's group carries a tooltip with its label and number.
    tips = [t.text for t in svg.iter(f"{SVG}title")][1:]
    assert tips == ["Approved: 120", "Denied: 0", "Paused: fewer than 10"]


def test_row_chart_scales_to_the_largest_possible_value() -> None:
    svg = parse(row_chart([Bar("a", 50, 50, "50"), Bar("b", 100, 100, "100"),
                           Bar("c", 101, 200, "101 to 200")],
                          chart_id="c", title="t", description="d"))
    widths = [float(r.get("width", "0")) for r in rects(svg, "bar")]
    (dashed,) = rects(svg, "bar-range")
    full = widths[2] + float(dashed.get("width", "0"))
    assert widths[0] == pytest.approx(widths[1] / 2)
    assert full == pytest.approx(widths[1] * 2, rel=0.01)


def test_text_is_escaped_and_xml_safe() -> None:
    nasty = '<script>alert("x")</script> & "quotes"\x00\x1b'
    markup = row_chart([Bar(nasty, 1, 1, "1")], chart_id='x"><b', title=nasty,
                       description=nasty)
    assert "<script" not in markup and '"><b' not in markup
    svg = parse(markup)  # well-formed: nothing broke out of its text or attribute
    clean = nasty[:-2]
    assert svg.get("id") == 'x"><b'
    assert svg.find(f"{SVG}title").text == clean  # type: ignore[union-attr]
    assert texts(svg)[0] == clean


def test_long_labels_are_clipped_but_kept_whole_in_the_tooltip() -> None:
    label = "A service with a very long name that goes on and on, well past any chart"
    svg = parse(row_chart([Bar(label, 3, 3, "3")], chart_id="c", title="t", description="d"))
    assert texts(svg)[0].endswith("…") and len(texts(svg)[0]) <= 40
    assert [t.text for t in svg.iter(f"{SVG}title")][1] == f"{label}: 3"


def test_narrow_columns_turn_their_numbers_upright() -> None:
    few = parse(column_chart([Bar("Oct 2026", 5, 5, "5")] * 3, chart_id="c", title="t",
                             description="d"))
    many = parse(column_chart([Bar("Oct 2026", 1203, 1203, "1,203")] * 12, chart_id="c",
                              title="t", description="d"))
    assert not any(t.get("transform") for t in few.iter(f"{SVG}text"))
    assert sum(1 for t in many.iter(f"{SVG}text") if t.get("transform")) == 12


def test_a_bar_must_know_its_range() -> None:
    with pytest.raises(ValueError, match="low <= high"):
        Bar("x", 5, 4, "?")
    with pytest.raises(ValueError, match="low <= high"):
        Bar("x", -1, 4, "?")


def test_no_bars_is_still_a_chart() -> None:
    for chart in (row_chart, column_chart):
        svg = parse(chart([], chart_id="c", title="Nothing yet", description="d"))
        assert svg.get("role") == "img" and not rects(svg, "bar")


bars = st.lists(
    st.tuples(st.text(max_size=80), st.integers(0, 10**6), st.integers(0, 10**6))
    .map(lambda t: Bar(t[0], min(t[1], t[2]), max(t[1], t[2]), f"{t[1]:,}")),
    max_size=14)


@settings(max_examples=60, deadline=None)
@given(bars)
def test_any_bars_make_well_formed_svg_inside_the_view_box(data: list[Bar]) -> None:
    for chart in (row_chart, column_chart):
        svg = parse(chart(data, chart_id="c", title="t", description="d"))
        _, _, width, height = (float(v) for v in svg.get("viewBox", "").split())
        for r in svg.iter(f"{SVG}rect"):
            x, y = float(r.get("x", "0")), float(r.get("y", "0"))
            w, h = float(r.get("width", "0")), float(r.get("height", "0"))
            assert x >= 0 and x + w <= width + 0.5 and y >= 0 and y + h <= height + 0.5
        assert len(rects(svg, "bar-range")) == sum(1 for b in data if not b.exact)
