"""London's clock in the wallet: shown with GMT or BST, typed into date-and-time boxes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.domain.categories import is_rfc3339_datetime
from wallet.clock import from_local_input, local_input, when
from wallet.views import possessive
from wallet.web import _templates


@pytest.mark.parametrize(("at", "shown"), [
    (datetime(2026, 1, 16, 14, 5, tzinfo=UTC), "16 January 2026, 14:05 GMT"),   # winter
    (datetime(2026, 7, 16, 14, 5, tzinfo=UTC), "16 July 2026, 15:05 BST"),      # summer
    # 23:30 UTC in summer is already the next day in London (and the next month here).
    (datetime(2026, 7, 31, 23, 30, tzinfo=UTC), "1 August 2026, 00:30 BST"),
    (datetime(2026, 12, 31, 23, 30, tzinfo=UTC), "31 December 2026, 23:30 GMT"),
    # The clocks change at 01:00 UTC on the last Sunday of March and of October.
    (datetime(2026, 3, 29, 0, 59, tzinfo=UTC), "29 March 2026, 00:59 GMT"),
    (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), "29 March 2026, 02:00 BST"),
    (datetime(2026, 10, 25, 0, 59, tzinfo=UTC), "25 October 2026, 01:59 BST"),
    (datetime(2026, 10, 25, 1, 0, tzinfo=UTC), "25 October 2026, 01:00 GMT"),
    # Any zone in, London out; a time without a zone is UTC, as the vault stores it.
    (datetime(2026, 7, 16, 9, 5, tzinfo=timezone(timedelta(hours=-5))), "16 July 2026, 15:05 BST"),
    (datetime(2026, 1, 16, 14, 5), "16 January 2026, 14:05 GMT"),
])
def test_times_are_shown_on_londons_clock(at: datetime, shown: str) -> None:
    assert when(at) == shown


def test_every_wallet_template_has_the_when_filter() -> None:
    env = _templates().env
    assert env.filters["when"] is when
    page = env.from_string("Added on {{ at|when }}.").render(
        at=datetime(2026, 7, 16, 23, 30, tzinfo=UTC))
    assert page == "Added on 17 July 2026, 00:30 BST."


@pytest.mark.parametrize(("stored", "box", "back"), [
    ("2024-07-17T09:30:00Z", "2024-07-17T10:30", "2024-07-17T09:30:00Z"),
    ("2024-01-17T10:30:00Z", "2024-01-17T10:30", "2024-01-17T10:30:00Z"),
    ("2024-07-17T23:30:05Z", "2024-07-18T00:30:05", "2024-07-17T23:30:05Z"),
    ("2024-05-17T09:31:00.250+05:30", "2024-05-17T05:01", "2024-05-17T04:01:00Z"),
])
def test_a_date_and_time_box_shows_and_reads_london_time(stored: str, box: str,
                                                        back: str) -> None:
    assert local_input(stored) == box
    assert from_local_input(box) == back


def test_typed_times_in_the_hours_the_clocks_change() -> None:
    # 01:30 on 31 March 2024 never happened in London: read on the clock before (GMT).
    assert from_local_input("2024-03-31T01:30") == "2024-03-31T01:30:00Z"
    # 01:30 on 27 October 2024 happened twice: the first, BST.
    assert from_local_input("2024-10-27T01:30") == "2024-10-27T00:30:00Z"


def test_text_that_is_not_a_time() -> None:
    assert from_local_input("yesterday") is None
    assert local_input("yesterday") == "yesterday"
    assert from_local_input("2024-05-17T09:30:00+01:00") == "2024-05-17T09:30:00+01:00"


@given(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1),
                    timezones=st.just(UTC)))
def test_a_time_shown_in_a_box_reads_back_as_the_same_instant(at: datetime) -> None:
    stored = at.replace(microsecond=0).isoformat().replace("+00:00", "Z")
    back = from_local_input(local_input(stored))
    assert back is not None and is_rfc3339_datetime(back)
    # The same instant, except the repeated hour in October, read as the first (BST).
    assert abs(datetime.fromisoformat(back) - datetime.fromisoformat(stored)) in (
        timedelta(0), timedelta(hours=1))


@pytest.mark.parametrize(("name", "owns"), [
    ("Riverside schools", "Riverside schools\u2019"),
    ("Leeds Council", "Leeds Council\u2019s"),
    ("Blue Badge team, Riverside Council", "Blue Badge team, Riverside Council\u2019s"),
    (" NHS ", "NHS\u2019s"),
])
def test_possessive(name: str, owns: str) -> None:
    assert possessive(name) == owns
