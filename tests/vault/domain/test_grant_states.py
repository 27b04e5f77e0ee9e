"""The grant state machine (ARCHITECTURE §3) and the rules for each read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from vault.domain.errors import ACCESS_REASONS, AccessDenied, IllegalTransition
from vault.domain.grants import (
    ACTIVE_STATES,
    ENTRY_KIND,
    FINAL_STATES,
    LIVE_STATES,
    Access,
    GrantAction,
    GrantState,
    GrantTerms,
    allowed_actions,
    check_read,
    check_scope,
    exhausted_after,
    is_final,
    next_state,
    read_limit,
)

# ARCHITECTURE §3, written out edge by edge as the oracle.
EDGES: dict[tuple[str, str], str] = {
    ("requested", "approve"): "approved",
    ("requested", "deny"): "denied",
    ("requested", "cancel"): "cancelled",
    ("requested", "lapse"): "lapsed",
    ("approved", "pause"): "paused",
    ("paused", "resume"): "approved",
    ("approved", "revoke"): "revoked",
    ("approved", "expire"): "expired",
    ("approved", "exhaust"): "exhausted",
    ("paused", "revoke"): "revoked",
    ("paused", "expire"): "expired",
    ("paused", "exhaust"): "exhausted",
}
FINAL = {"denied", "cancelled", "lapsed", "revoked", "expired", "exhausted"}
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
END = START + timedelta(days=10)


def make_terms(access: Access) -> GrantTerms:
    return GrantTerms(
        grant_id="g1", service_id="svc1", purpose="service_provision",
        categories=("address.home",), derived=("age_over_18",),
        not_before="2026-03-01T09:00:00Z", expires_at="2026-03-11T09:00:00Z",
        access=access, data_life="P30D", justification="To deliver your service.",
    )


@pytest.mark.parametrize("state", list(GrantState))
@pytest.mark.parametrize("action", list(GrantAction))
def test_every_pair_matches_the_architecture(state: GrantState, action: GrantAction) -> None:
    expected = EDGES.get((state.value, action.value))
    if expected is None:
        with pytest.raises(IllegalTransition) as info:
            next_state(state, action)
        assert (info.value.state, info.value.action) == (state.value, action.value)
        assert state.value in str(info.value) and action.value in str(info.value)
        assert action not in allowed_actions(state)
    else:
        assert next_state(state, action) == GrantState(expected)
        assert action in allowed_actions(state)


def test_state_sets_and_entry_kinds() -> None:
    assert {s.value for s in GrantState} == {"requested", *FINAL, "approved", "paused"}
    assert {s.value for s in FINAL_STATES} == FINAL
    assert {s.value for s in LIVE_STATES} == {"requested", "approved", "paused"}
    assert {s.value for s in ACTIVE_STATES} == {"approved", "paused"}
    assert all(is_final(s) == (s.value in FINAL) for s in GrantState)
    # One ledger entry kind per action, all distinct, all `grant.<past tense>`.
    assert set(ENTRY_KIND) == set(GrantAction)
    assert len(set(ENTRY_KIND.values())) == len(GrantAction)
    assert ENTRY_KIND[GrantAction.RESUME] == "grant.resumed"
    for action, kind in ENTRY_KIND.items():
        assert kind.startswith("grant.")
        target = next((t for (_, a), t in EDGES.items() if a == action.value), None)
        if target is not None and action is not GrantAction.RESUME:
            assert kind == f"grant.{target}"


def test_unknown_strings_are_illegal() -> None:
    with pytest.raises(IllegalTransition):
        next_state("requested", "launch")  # type: ignore[arg-type]
    with pytest.raises(IllegalTransition):
        next_state("limbo", "approve")  # type: ignore[arg-type]


def expected_denial(*, state: str, access: Access, now: datetime, reads_used: int,
                    last_read_at: datetime | None, service_active: bool) -> str | None:
    """The reason a read must be refused, from the rules as stated (None: allowed)."""
    if not service_active:
        return "service_suspended"
    if state in ("requested", "denied", "cancelled", "lapsed"):
        return "not_approved"
    if state in ("paused", "revoked", "expired", "exhausted"):
        return state
    if now < START:
        return "not_yet_valid"
    if now >= END:
        return "expired"
    limit = 1 if access.mode == "one_time" else access.max_reads
    if limit is not None and reads_used >= limit:
        return "exhausted"
    if access.min_interval is not None and last_read_at is not None:
        gap = {"PT1H": timedelta(hours=1), "P1D": timedelta(days=1)}[access.min_interval]
        if now - last_read_at < gap:
            return "too_soon"
    return None


ACCESSES = [
    Access("one_time"),
    Access("periodic", max_reads=3),
    Access("periodic", min_interval="PT1H"),
    Access("periodic", max_reads=4, min_interval="P1D"),
]


class GrantMachine(RuleBasedStateMachine):
    """Any sequence of actions, clock moves, suspensions and reads on one grant."""

    @initialize(access=st.sampled_from(ACCESSES), offset=st.integers(-86_400, 2 * 86_400),
                approved=st.booleans())
    def start(self, access: Access, offset: int, approved: bool) -> None:
        self.terms = make_terms(access)
        self.state = GrantState.REQUESTED
        self.now = START + timedelta(seconds=offset)
        self.reads_used = 0
        self.last_read_at: datetime | None = None
        self.service_active = True
        self.entries: list[str] = []
        if approved:  # start half the runs approved, so reads are exercised often
            self.act(GrantAction.APPROVE)

    @rule(action=st.sampled_from(list(GrantAction)))
    def act(self, action: GrantAction) -> None:
        before = self.state
        expected = EDGES.get((before.value, action.value))
        if expected is None:
            with pytest.raises(IllegalTransition) as info:
                next_state(before, action)
            assert (info.value.state, info.value.action) == (before.value, action.value)
            assert self.state is before  # nothing changed
        else:
            self.state = next_state(before, action)
            assert self.state.value == expected
            self.entries.append(ENTRY_KIND[action])

    @rule(seconds=st.sampled_from([1, 59, 3_599, 3_600, 86_399, 86_400])
          | st.integers(0, 3 * 86_400))
    def advance(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    @rule()
    def suspend_or_reinstate(self) -> None:
        self.service_active = not self.service_active

    @rule()
    def read(self) -> None:
        want = expected_denial(
            state=self.state.value, access=self.terms.access, now=self.now,
            reads_used=self.reads_used, last_read_at=self.last_read_at,
            service_active=self.service_active,
        )
        try:
            check_read(state=self.state, terms=self.terms, now=self.now,
                       reads_used=self.reads_used, last_read_at=self.last_read_at,
                       service_active=self.service_active)
        except AccessDenied as exc:
            assert exc.reason == want
            return
        assert want is None, f"read allowed, expected {want}"
        assert self.state is GrantState.APPROVED and START <= self.now < END
        self.reads_used += 1
        self.last_read_at = self.now
        if exhausted_after(self.terms, self.reads_used):
            self.state = next_state(self.state, GrantAction.EXHAUST)
            self.entries.append(ENTRY_KIND[GrantAction.EXHAUST])

    @invariant()
    def state_is_legal(self) -> None:
        assert isinstance(self.state, GrantState)
        limit = read_limit(self.terms)
        assert limit is None or self.reads_used <= limit
        if self.reads_used:
            assert "grant.approved" in self.entries

    @invariant()
    def final_states_accept_nothing(self) -> None:
        if is_final(self.state):
            assert allowed_actions(self.state) == frozenset()
            for action in GrantAction:
                with pytest.raises(IllegalTransition):
                    next_state(self.state, action)


GrantMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=30,
                                          deadline=None)
test_grant_machine = GrantMachine.TestCase


# --- check_read, case by case ---

PERIODIC = make_terms(Access("periodic", max_reads=3, min_interval="PT1H"))
ONE_TIME = make_terms(Access("one_time"))


def read(terms: GrantTerms = PERIODIC, *, state: GrantState = GrantState.APPROVED,
         now: datetime = START + timedelta(days=1), reads_used: int = 0,
         last_read_at: datetime | None = None, service_active: bool = True) -> str | None:
    try:
        check_read(state=state, terms=terms, now=now, reads_used=reads_used,
                   last_read_at=last_read_at, service_active=service_active)
    except AccessDenied as exc:
        assert exc.reason in ACCESS_REASONS and str(exc)
        return exc.reason
    return None


def test_read_allowed_inside_the_window() -> None:
    assert read() is None
    assert read(now=START) is None                          # not_before is inclusive
    assert read(now=END - timedelta(seconds=1)) is None     # expires_at is exclusive
    assert read(ONE_TIME) is None


@pytest.mark.parametrize(
    ("state", "reason"),
    [(GrantState.REQUESTED, "not_approved"), (GrantState.DENIED, "not_approved"),
     (GrantState.CANCELLED, "not_approved"), (GrantState.LAPSED, "not_approved"),
     (GrantState.PAUSED, "paused"), (GrantState.REVOKED, "revoked"),
     (GrantState.EXPIRED, "expired"), (GrantState.EXHAUSTED, "exhausted")],
)
def test_read_refused_unless_approved(state: GrantState, reason: str) -> None:
    assert read(state=state) == reason


def test_read_refused_by_time_limits_and_spacing() -> None:
    assert read(now=START - timedelta(seconds=1)) == "not_yet_valid"
    assert read(now=END) == "expired"
    assert read(reads_used=2) is None
    assert read(reads_used=3) == "exhausted"
    assert read(ONE_TIME, reads_used=1) == "exhausted"
    now = START + timedelta(days=1)
    assert read(now=now, reads_used=1, last_read_at=now - timedelta(minutes=59)) == "too_soon"
    assert read(now=now, reads_used=1, last_read_at=now - timedelta(hours=1)) is None


def test_read_reasons_come_in_order() -> None:
    assert read(state=GrantState.REVOKED, service_active=False) == "service_suspended"
    assert read(state=GrantState.PAUSED, now=END) == "paused"
    assert read(now=START - timedelta(days=1), reads_used=9) == "not_yet_valid"
    assert read(now=END, reads_used=9) == "expired"
    now = START + timedelta(days=1)
    assert read(now=now, reads_used=3, last_read_at=now) == "exhausted"


def test_read_needs_an_aware_clock() -> None:
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        read(now=datetime(2026, 3, 2, 9, 0))
    with pytest.raises(ValueError, match="last_read_at must be timezone-aware"):
        read(reads_used=1, last_read_at=datetime(2026, 3, 2, 8, 0))


def test_exhausted_after() -> None:
    assert not exhausted_after(ONE_TIME, 0) and exhausted_after(ONE_TIME, 1)
    assert not exhausted_after(PERIODIC, 2) and exhausted_after(PERIODIC, 3)
    unlimited = make_terms(Access("periodic", min_interval="PT1H"))
    assert not exhausted_after(unlimited, 1_000_000)
    assert read_limit(unlimited) is None and read_limit(ONE_TIME) == 1


def test_check_scope() -> None:
    check_scope(PERIODIC, categories=["address.home"], derived=["age_over_18"])
    check_scope(PERIODIC, categories=[], derived=[])
    with pytest.raises(AccessDenied) as info:
        check_scope(PERIODIC, categories=["address.home", "contact.email"], derived=[])
    assert info.value.reason == "out_of_scope" and "contact.email" in str(info.value)
    with pytest.raises(AccessDenied):
        check_scope(PERIODIC, categories=[], derived=["age_over_65"])


def test_access_denied_knows_only_the_fixed_reasons() -> None:
    assert set(ACCESS_REASONS) == {
        "not_approved", "paused", "revoked", "expired", "exhausted", "not_yet_valid",
        "too_soon", "service_suspended", "out_of_scope", "insufficient_scope",
    }
    with pytest.raises(ValueError):
        AccessDenied("bored")
