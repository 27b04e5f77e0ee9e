"""ISO 8601 durations of whole days, hours, minutes and seconds."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.domain.durations import describe_duration, format_duration, parse_duration
from vault.domain.errors import InvalidDuration


@pytest.mark.parametrize(
    ("text", "expected", "canonical"),
    [
        ("P30D", timedelta(days=30), "P30D"),
        ("PT1H", timedelta(hours=1), "PT1H"),
        ("PT90M", timedelta(minutes=90), "PT1H30M"),
        ("PT45S", timedelta(seconds=45), "PT45S"),
        ("P1DT2H30M", timedelta(days=1, hours=2, minutes=30), "P1DT2H30M"),
        ("PT36H", timedelta(hours=36), "P1DT12H"),
        ("P0D", timedelta(0), "PT0S"),
        ("PT0S", timedelta(0), "PT0S"),
        ("P1DT1S", timedelta(days=1, seconds=1), "P1DT1S"),
    ],
)
def test_parse_and_canonical_form(text: str, expected: timedelta, canonical: str) -> None:
    assert parse_duration(text) == expected
    assert format_duration(expected) == canonical


@pytest.mark.parametrize(
    "text",
    [
        "P1Y", "P1M", "P1Y2M3D", "P2W", "PT1.5H", "PT0,5H", "P1.0D", "-P1D", "P-1D", "PT-5M",
        "", "P", "PT", "P1DT", "1D", "p1d", "P1d", "PT1H2D", "PT30M1H", "P1D ", " P1D",
        "P1DT2H\n", "P\u0663D", "P1D1D", "P1234567890D", "PTH", "days", "P1DT2H30M10S5",
    ],
)
def test_refuses_years_months_fractions_negatives_and_garbage(text: str) -> None:
    with pytest.raises(InvalidDuration, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize("value", [None, 30, timedelta(days=1), b"P1D"])
def test_refuses_non_text(value: object) -> None:
    with pytest.raises(InvalidDuration):
        parse_duration(value)  # type: ignore[arg-type]


def test_too_long_to_count() -> None:
    with pytest.raises(InvalidDuration, match="longer than"):
        parse_duration("P999999999DT999999999H")


@pytest.mark.parametrize("td", [timedelta(seconds=-1), timedelta(milliseconds=1500)])
def test_format_refuses_negative_and_fractional(td: timedelta) -> None:
    with pytest.raises(InvalidDuration):
        format_duration(td)


@pytest.mark.parametrize(
    ("td", "words"),
    [
        (timedelta(days=30), "30 days"),
        (timedelta(hours=1), "1 hour"),
        (timedelta(days=1, hours=2), "1 day and 2 hours"),
        (timedelta(days=2, hours=1, minutes=5), "2 days, 1 hour and 5 minutes"),
        (timedelta(seconds=1), "1 second"),
        (timedelta(0), "no time at all"),
    ],
)
def test_describe(td: timedelta, words: str) -> None:
    assert describe_duration(td) == words


whole_seconds = st.integers(min_value=0, max_value=10_000 * 86_400).map(
    lambda s: timedelta(seconds=s)
)


@settings(max_examples=300, deadline=None)
@given(whole_seconds)
def test_round_trip_from_timedelta(td: timedelta) -> None:
    text = format_duration(td)
    assert parse_duration(text) == td
    assert text.startswith("P") and text.isascii()


@settings(max_examples=300, deadline=None)
@given(
    days=st.none() | st.integers(0, 99_999),
    hours=st.none() | st.integers(0, 99_999),
    minutes=st.none() | st.integers(0, 99_999),
    seconds=st.none() | st.integers(0, 99_999),
)
def test_round_trip_from_text(
    days: int | None, hours: int | None, minutes: int | None, seconds: int | None
) -> None:
    time = "".join(f"{n}{u}" for n, u in ((hours, "H"), (minutes, "M"), (seconds, "S"))
                   if n is not None)
    text = "P" + (f"{days}D" if days is not None else "") + (f"T{time}" if time else "")
    if text == "P":
        with pytest.raises(InvalidDuration):
            parse_duration(text)
        return
    td = parse_duration(text)
    assert td == timedelta(days=days or 0, hours=hours or 0, minutes=minutes or 0,
                           seconds=seconds or 0)
    canonical = format_duration(td)
    assert parse_duration(canonical) == td
    assert format_duration(parse_duration(canonical)) == canonical
