"""The terms as authorization details: exactly the personal_data object the vault's PAR
endpoint documents, with durations and times spelt the way it reads them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from clients.service import Access, PersonalData
from clients.service.terms import format_duration, format_time


def terms(**changes: Any) -> PersonalData:
    args: dict[str, Any] = {"purpose": "eligibility_assessment", "categories": ["address.home"],
                            "access": Access.one_time(), "data_life": "P30D",
                            "justification": "To check.", "duration": "P30D"}
    args.update(changes)
    return PersonalData(**args)


def test_the_json_is_the_documented_object() -> None:
    t = terms(derived=["age_over_65"], access=Access.periodic(max_reads=3,
                                                               min_interval="PT1H"),
              not_before=datetime(2026, 3, 1, 10, 0, 0, 999, tzinfo=timezone(timedelta(hours=1))))
    assert t.to_json() == {
        "type": "personal_data", "purpose": "eligibility_assessment",
        "categories": ["address.home"], "derived": ["age_over_65"], "duration": "P30D",
        "not_before": "2026-03-01T09:00:00Z",
        "access": {"mode": "periodic", "max_reads": 3, "min_interval": "PT1H"},
        "data_life": "P30D", "justification": "To check."}


def test_an_end_date_instead_of_a_duration() -> None:
    t = terms(duration=None, expires_at=datetime(2026, 3, 1, 9, tzinfo=UTC))
    assert t.to_json()["expires_at"] == "2026-03-01T09:00:00Z" and "duration" not in t.to_json()
    with pytest.raises(ValueError, match="exactly one"):
        terms(expires_at="2026-03-01T09:00:00Z")
    with pytest.raises(ValueError, match="exactly one"):
        terms(duration=None)
    with pytest.raises(ValueError, match="aware"):
        terms(duration=None, expires_at=datetime(2026, 3, 1)).to_json()


def test_access_modes() -> None:
    assert Access.one_time().to_json() == {"mode": "one_time"}
    assert Access.periodic().to_json() == {"mode": "periodic"}
    assert Access.periodic(min_interval=timedelta(hours=36)).to_json() == {
        "mode": "periodic", "min_interval": "P1DT12H"}
    for bad in ({"max_reads": 0}, {"max_reads": True}, {"max_reads": 2.5}):
        with pytest.raises(ValueError):
            Access("periodic", **bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Access("one_time", max_reads=1)
    with pytest.raises(ValueError):
        Access("forever")  # type: ignore[arg-type]


@pytest.mark.parametrize(("td", "text"), [
    (timedelta(days=30), "P30D"), (timedelta(hours=1), "PT1H"),
    (timedelta(days=1, minutes=1, seconds=5), "P1DT1M5S"), (timedelta(0), "PT0S"),
    (timedelta(seconds=90), "PT1M30S")])
def test_timedeltas_are_spelt_as_iso_8601(td: timedelta, text: str) -> None:
    assert format_duration(td) == text
    assert terms(duration=td, data_life=td).to_json()["data_life"] == text


def test_durations_that_cannot_be_spelt_are_refused() -> None:
    for bad in (timedelta(seconds=-1), timedelta(milliseconds=5)):
        with pytest.raises(ValueError):
            format_duration(bad)
    with pytest.raises(TypeError):
        format_duration(30)  # type: ignore[arg-type]
    assert format_time("2026-03-01T09:00:00Z") == "2026-03-01T09:00:00Z"


def test_names_must_be_a_list_and_terms_are_immutable() -> None:
    with pytest.raises(TypeError, match="not a single string"):
        terms(categories="address.home")
    t = terms(categories=["address.home", "identity.name"])
    assert t.categories == ("address.home", "identity.name")
    with pytest.raises(AttributeError):
        t.purpose = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        terms(access={"mode": "one_time"})


def test_a_grant_to_write_says_so_and_a_grant_to_read_is_sent_as_before() -> None:
    write = terms(categories=["benefits.attendance_allowance"], actions=["write"])
    doc = write.to_json()
    assert doc["actions"] == ["write"] and list(doc)[:2] == ["type", "actions"]
    both = terms(actions=["write", "read", "write"])
    assert both.actions == ("read", "write") and both.to_json()["actions"] == ["read", "write"]
    # ["read"] is the default: not sent, so the object is exactly what it always was.
    assert "actions" not in terms().to_json()
    assert terms(actions=["read"]).to_json() == terms().to_json()


@pytest.mark.parametrize(("changes", "words"), [
    ({"actions": []}, "actions is"),
    ({"actions": ["delete"]}, "actions is"),
    ({"actions": "write"}, "not a single string"),
    ({"actions": ["write"], "derived": ["age_over_65"]}, "no derived answers"),
    ({"actions": ["write"], "categories": []}, "names the categories it writes"),
])
def test_bad_actions_are_refused_before_sending(changes: dict[str, Any], words: str) -> None:
    with pytest.raises((ValueError, TypeError), match=words):
        terms(**changes)
