"""Issued facts in the domain (ARCHITECTURE §8): `receives:<benefit>` is marked
`issued_only` and the consent screen says what it counts (the other answers are not);
`check_write` lets a grant write only its categories, while it is live."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from vault.domain.derived import BENEFITS, resolve_derived, static_derived_names
from vault.domain.errors import AccessDenied
from vault.domain.grants import Access, GrantState, GrantTerms, check_write, plain_terms


def test_only_the_benefit_answers_rest_on_issued_facts() -> None:
    for benefit in BENEFITS:
        assert resolve_derived(f"receives:{benefit}").issued_only
    for name in [*static_derived_names(), "resident_in:Riverside"]:
        assert not resolve_derived(name).issued_only, name


def _terms(derived: tuple[str, ...]) -> GrantTerms:
    return GrantTerms(
        grant_id="gr_x", service_id="svc_x", purpose="eligibility_assessment",
        categories=(), derived=derived, not_before="2026-12-01T00:00:00Z",
        expires_at="2026-12-31T00:00:00Z", access=Access("one_time"), data_life="P0D",
        justification="To reduce your council tax.")


def test_the_consent_screen_says_what_an_issued_answer_counts() -> None:
    at = datetime(2026, 12, 1, tzinfo=UTC)
    words = plain_terms(_terms(("age_over_65", "receives:attendance_allowance")),
                        service_name="Council tax team", at=lambda _: at.isoformat())
    assert words.answers is not None
    assert words.answers.endswith(
        "Only what the service that issues it added to your vault counts for: Whether you "
        "get Attendance Allowance (not anything you typed in).")
    plain = plain_terms(_terms(("age_over_65",)), service_name="Council tax team")
    assert plain.answers is not None and "Only what the service" not in plain.answers


def test_check_write_needs_a_live_grant_to_write_that_category() -> None:
    write = GrantTerms(
        grant_id="gr_w", service_id="svc_w", purpose="eligibility_assessment",
        categories=("benefits.attendance_allowance",), derived=(),
        not_before="2026-12-01T00:00:00Z", expires_at="2026-12-31T00:00:00Z",
        access=Access("one_time"), data_life="P0D", justification="To record your award.",
        actions=("write",))
    inside = datetime(2026, 12, 10, tzinfo=UTC)
    ok: dict[str, Any] = {"state": GrantState.APPROVED, "terms": write, "now": inside,
          "category": "benefits.attendance_allowance", "service_active": True}
    check_write(**ok)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"category": "benefits.universal_credit"}, "insufficient_scope"),
        ({"terms": _terms(())}, "insufficient_scope"),  # a grant only to read
        ({"state": GrantState.REVOKED}, "revoked"),
        ({"state": GrantState.PAUSED}, "paused"),
        ({"state": GrantState.REQUESTED}, "not_approved"),
        ({"now": datetime(2027, 1, 1, tzinfo=UTC)}, "expired"),
        ({"now": datetime(2026, 11, 1, tzinfo=UTC)}, "not_yet_valid"),
        ({"service_active": False}, "service_suspended"),
    ]
    for change, reason in cases:
        with pytest.raises(AccessDenied) as info:
            check_write(**{**ok, **change})
        assert info.value.reason == reason, change
    # Writes are not reads: a one-time grant's read count does not stop them.
    check_write(**ok)
