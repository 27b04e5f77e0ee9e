"""Grants: the state machine of ARCHITECTURE §3, requests against a registration, and reads.

States: requested → approved | denied | cancelled | lapsed; approved ⇄ paused;
approved | paused → revoked | expired | exhausted. Every transition is one ledger entry,
of the kind `ENTRY_KIND` names. The terms themselves live in `vault.domain.terms`
(re-exported here). All times are passed in (`now=`), never read from a clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from vault.domain.categories import categories as category_catalog
from vault.domain.derived import resolve_derived
from vault.domain.durations import describe_duration, parse_duration
from vault.domain.errors import AccessDenied, GrantRefused, IllegalTransition, UnknownDerived
from vault.domain.purposes import Purpose
from vault.domain.purposes import purposes as purpose_catalog
from vault.domain.services import ServiceProfile
from vault.domain.terms import READ_ONLY, Access, GrantTerms, check_actions, format_utc, parse_utc

__all__ = [
    "ACTIVE_STATES",
    "CLOCK_SKEW",
    "ENTRY_KIND",
    "FINAL_STATES",
    "LAPSE_AFTER",
    "LIVE_STATES",
    "MAX_START_AHEAD",
    "Access",
    "GrantAction",
    "GrantState",
    "GrantTerms",
    "PlainTerms",
    "allowed_actions",
    "check_read",
    "check_scope",
    "check_write",
    "describe",
    "exhausted_after",
    "format_utc",
    "is_final",
    "lapse_deadline",
    "next_state",
    "parse_utc",
    "plain_terms",
    "read_limit",
    "request_terms",
]


class GrantState(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    DENIED = "denied"
    CANCELLED = "cancelled"
    LAPSED = "lapsed"
    PAUSED = "paused"
    REVOKED = "revoked"
    EXPIRED = "expired"
    EXHAUSTED = "exhausted"


class GrantAction(StrEnum):
    APPROVE = "approve"
    DENY = "deny"
    CANCEL = "cancel"
    LAPSE = "lapse"
    PAUSE = "pause"
    RESUME = "resume"
    REVOKE = "revoke"
    EXPIRE = "expire"
    EXHAUST = "exhaust"


_S, _A = GrantState, GrantAction
_ENDINGS = {_A.REVOKE: _S.REVOKED, _A.EXPIRE: _S.EXPIRED, _A.EXHAUST: _S.EXHAUSTED}
_TRANSITIONS: Mapping[GrantState, Mapping[GrantAction, GrantState]] = {
    _S.REQUESTED: {
        _A.APPROVE: _S.APPROVED, _A.DENY: _S.DENIED, _A.CANCEL: _S.CANCELLED, _A.LAPSE: _S.LAPSED,
    },
    _S.APPROVED: {_A.PAUSE: _S.PAUSED, **_ENDINGS},
    _S.PAUSED: {_A.RESUME: _S.APPROVED, **_ENDINGS},
}

#: The ledger entry kind recorded for each action (ARCHITECTURE §2).
ENTRY_KIND: Mapping[GrantAction, str] = {
    _A.APPROVE: "grant.approved",
    _A.DENY: "grant.denied",
    _A.CANCEL: "grant.cancelled",
    _A.LAPSE: "grant.lapsed",
    _A.PAUSE: "grant.paused",
    _A.RESUME: "grant.resumed",
    _A.REVOKE: "grant.revoked",
    _A.EXPIRE: "grant.expired",
    _A.EXHAUST: "grant.exhausted",
}
#: States that can still change (the complement of FINAL_STATES).
LIVE_STATES = frozenset(_TRANSITIONS)
#: States in which the grant has been approved and has not ended (reads need APPROVED).
ACTIVE_STATES = frozenset({_S.APPROVED, _S.PAUSED})
FINAL_STATES = frozenset(GrantState) - LIVE_STATES

#: A request nobody answers lapses this long after it was made (or at expiry, if sooner).
LAPSE_AFTER = timedelta(days=7)
#: How far in the past a requested start may be (clocks of vault and service differ).
CLOCK_SKEW = timedelta(minutes=5)
#: How far ahead a requested start may be.
MAX_START_AHEAD = timedelta(days=365)


def next_state(state: GrantState, action: GrantAction) -> GrantState:
    """The state after `action`; IllegalTransition if `state` does not allow it."""
    try:
        return _TRANSITIONS[GrantState(state)][GrantAction(action)]
    except (KeyError, ValueError):
        raise IllegalTransition(str(state), str(action)) from None


def allowed_actions(state: GrantState) -> frozenset[GrantAction]:
    """The actions a grant in `state` may take (none once final)."""
    return frozenset(_TRANSITIONS.get(GrantState(state), {}))


def is_final(state: GrantState) -> bool:
    """True for states no action leaves: denied, cancelled, lapsed, revoked, expired, exhausted."""
    return GrantState(state) in FINAL_STATES


def _now(value: datetime, name: str = "now") -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (a datetime with a UTC offset)")
    return value.astimezone(UTC)


def _requested_time(field: str, value: datetime) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise GrantRefused(f"{field} must be a date and time with a time zone")
    return value.astimezone(UTC)


def _codes(field: str, values: Any) -> list[str]:
    if isinstance(values, str) or not isinstance(values, Sequence | set | frozenset):
        raise GrantRefused(f"{field} must be a list")
    if not all(isinstance(v, str) for v in values):
        raise GrantRefused(f"every entry of {field} must be text")
    return list(values)


def request_terms(
    service: ServiceProfile,
    *,
    grant_id: str,
    purpose: str,
    categories: Sequence[str],
    derived: Sequence[str],
    duration: timedelta | None = None,
    not_before: datetime | None = None,
    expires_at: datetime | None = None,
    access: Access,
    data_life: str,
    justification: str,
    now: datetime,
    actions: Sequence[str] = READ_ONLY,
) -> GrantTerms:
    """The terms of a new request, checked against the service's registration.

    `actions` (RFC 9396 §2.2) is what it may do with the categories: "read" them (each
    one it is registered to read), "write" them (each one the catalog lets be issued
    and it is registered to issue: ARCHITECTURE §8), or both (each one both). A grant
    that writes names no derived answers.
    Give the end as `duration` (from `not_before`) or as `expires_at`, not both.
    `not_before` defaults to `now`, and may be at most CLOCK_SKEW in the past. Times are
    cut to whole seconds. GrantRefused says exactly what is outside the registration.
    """
    now = _now(now)
    name = service.name
    if not service.active:
        raise GrantRefused(f"{name} is suspended and cannot ask for data")
    if not isinstance(purpose, str) or purpose not in purpose_catalog():
        raise GrantRefused(f"unknown purpose '{str(purpose)[:60]}'")
    if purpose not in service.purposes:
        raise GrantRefused(f"{name} is not registered for the purpose '{purpose}'")
    wanted_actions = check_actions(actions)
    reads, writes = "read" in wanted_actions, "write" in wanted_actions
    wanted_categories = _codes("categories", categories)
    for code in wanted_categories:
        if code not in category_catalog():
            raise GrantRefused(f"unknown category '{code[:60]}'")
        if reads and code not in service.categories:
            raise GrantRefused(f"{name} is not registered to read the category '{code}'")
        if writes and not category_catalog()[code].issuable:
            raise GrantRefused(f"the category '{code}' cannot be written by a service: the "
                               "catalog lets no service issue it")
        if writes and code not in service.issues:
            raise GrantRefused(f"{name} is not registered to issue the category '{code}'")
    wanted_derived = _codes("derived", derived)
    if writes and wanted_derived:
        raise GrantRefused("a grant that writes cannot name derived answers: they are "
                           "computed by the vault, never written")
    if writes and not wanted_categories:
        raise GrantRefused("a grant that writes must name the categories it writes")
    for answer in wanted_derived:
        try:
            resolve_derived(answer)
        except UnknownDerived as exc:
            raise GrantRefused(f"unknown derived answer: {exc}") from None
        if answer not in service.derived:
            raise GrantRefused(f"{name} is not registered for the derived answer '{answer}'")
    if not wanted_categories and not wanted_derived:
        raise GrantRefused("a request must ask for at least one category or derived answer")

    start = now if not_before is None else _requested_time("not_before", not_before)
    if start < now - CLOCK_SKEW:
        raise GrantRefused("not_before is in the past")
    if start > now + MAX_START_AHEAD:
        raise GrantRefused("not_before may be at most 365 days ahead")
    longest = timedelta(days=service.max_days)
    too_long = f"{name} may ask for at most {service.max_days} days, but this request would last"
    if duration is not None and expires_at is None:
        if not isinstance(duration, timedelta) or duration <= timedelta(0):
            raise GrantRefused("the duration must be longer than zero")
        if duration > longest:  # checked before adding, which could overflow
            whole = duration - timedelta(microseconds=duration.microseconds)
            raise GrantRefused(f"{too_long} {describe_duration(whole)}")
        end = start + duration
    elif expires_at is not None and duration is None:
        end = _requested_time("expires_at", expires_at)
    else:
        raise GrantRefused("give either a duration or an expires_at (exactly one of them)")
    begin_text, end_text = format_utc(start), format_utc(end)
    span = parse_utc(end_text) - parse_utc(begin_text)
    if span <= timedelta(0):
        raise GrantRefused("expires_at must be after not_before")
    if span > longest:
        raise GrantRefused(f"{too_long} {describe_duration(span)}")
    if not isinstance(access, Access):
        raise GrantRefused("access must be one_time or periodic")
    return GrantTerms(
        grant_id=grant_id,
        service_id=service.id,
        purpose=purpose,
        categories=tuple(wanted_categories),
        derived=tuple(wanted_derived),
        not_before=begin_text,
        expires_at=end_text,
        access=access,
        data_life=data_life,
        justification=justification,
        actions=wanted_actions,
    )


def read_limit(terms: GrantTerms) -> int | None:
    """How many reads the terms allow in all (None: no count, only the time window)."""
    return 1 if terms.access.mode == "one_time" else terms.access.max_reads


def exhausted_after(terms: GrantTerms, reads_used: int) -> bool:
    """True once `reads_used` reaches the terms' read limit (the grant should be exhausted)."""
    limit = read_limit(terms)
    return limit is not None and reads_used >= limit


_STATE_REASON = {
    GrantState.PAUSED: "paused",
    GrantState.REVOKED: "revoked",
    GrantState.EXPIRED: "expired",
    GrantState.EXHAUSTED: "exhausted",
}


def check_read(
    *,
    state: GrantState,
    terms: GrantTerms,
    now: datetime,
    reads_used: int,
    last_read_at: datetime | None,
    service_active: bool,
) -> None:
    """Raise AccessDenied(reason) unless a read under this grant is allowed at `now`.

    Checked in this order: the service is active; the grant lets the service read at
    all (a grant only to write does not); the grant is approved (not requested,
    denied, cancelled, lapsed, paused, revoked, expired or exhausted); `now` is within
    [not_before, expires_at); fewer reads than the limit; at least min_interval since
    the last read.
    """
    now = _now(now)
    if not service_active:
        raise AccessDenied("service_suspended")
    if not terms.can_read:  # RFC 6750 §3.1: the token lacks the scope a read needs
        raise AccessDenied("insufficient_scope", "this grant lets the service add to the "
                                                 "citizen's vault, not read from it")
    _check_live(state, terms, now)
    if exhausted_after(terms, reads_used):
        raise AccessDenied("exhausted")
    interval = terms.access.interval
    if interval is not None and last_read_at is not None:
        allowed_from = _now(last_read_at, "last_read_at") + interval
        if now < allowed_from:
            raise AccessDenied(
                "too_soon", f"the next read is allowed from {format_utc(allowed_from)}"
            )


def check_write(
    *,
    state: GrantState,
    terms: GrantTerms,
    now: datetime,
    category: str,
    service_active: bool,
) -> None:
    """Raise AccessDenied(reason) unless the grant lets its service write `category` at
    `now` (an issuer's write, ARCHITECTURE §8).

    Checked in this order: the service is active; the grant lets the service write, and
    this category (`insufficient_scope`, RFC 6750 §3.1, otherwise); the grant is approved;
    `now` is within [not_before, expires_at). Writes are not reads: they use up no read
    count and no `min_interval`.
    """
    now = _now(now)
    if not service_active:
        raise AccessDenied("service_suspended")
    if not terms.can_write:
        raise AccessDenied("insufficient_scope", "this grant lets the service read from the "
                                                 "citizen's vault, not add to it")
    if category not in terms.categories:
        raise AccessDenied("insufficient_scope", f"this grant does not let the service "
                                                 f"write the category '{category[:64]}'")
    _check_live(state, terms, now)


def _check_live(state: GrantState, terms: GrantTerms, now: datetime) -> None:
    """What reads and writes both need: the grant approved, and `now` in its window."""
    state = GrantState(state)
    if state is not GrantState.APPROVED:
        raise AccessDenied(_STATE_REASON.get(state, "not_approved"))
    if now < terms.starts:
        raise AccessDenied("not_yet_valid", f"this grant starts at {terms.not_before}")
    if now >= terms.ends:
        raise AccessDenied("expired", f"this grant expired at {terms.expires_at}")


def check_scope(terms: GrantTerms, *, categories: Sequence[str], derived: Sequence[str]) -> None:
    """AccessDenied('out_of_scope') if asked for a category or answer the terms do not cover."""
    outside = sorted(set(categories) - set(terms.categories))
    outside += sorted(set(derived) - set(terms.derived))
    if outside:
        raise AccessDenied(
            "out_of_scope", f"this grant does not cover {', '.join(outside)[:200]}"
        )


def lapse_deadline(requested_at: datetime, terms: GrantTerms) -> datetime:
    """When an unanswered request lapses: LAPSE_AFTER (7 days) after it was made, or when
    the terms would have expired, whichever comes first."""
    return min(terms.ends, _now(requested_at, "requested_at") + LAPSE_AFTER)


_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December",
)


def _when(dt: datetime) -> str:
    return f"{dt.day} {_MONTHS[dt.month - 1]} {dt.year} at {dt:%H:%M} UTC"


@dataclass(frozen=True, slots=True)
class PlainTerms:
    """Grant terms in plain English, one sentence per fact, for the consent screen."""

    intro: str
    why: str
    sees: str | None
    answers: str | None
    when: str
    #: How often they may read, or (a grant only to write) that they cannot read.
    how_often: str
    #: How long they may keep what they read; None when they read nothing.
    keep: str | None
    justification: str
    law: str
    rights: str
    #: What they will add to the vault (a grant that writes), else None.
    adds: str | None = None
    #: `adds` without its list of labels, for a page that lists what they add beside it
    #: (the wallet's consent screen), so each label is said once; in no `lines()`.
    may_change: str | None = None

    def lines(self) -> list[str]:
        return [line for line in (self.intro, self.why, self.adds, self.sees, self.answers,
                                  self.when, self.how_often, self.keep, self.justification,
                                  self.law, self.rights) if line is not None]


def _how_often(access: Access) -> str:
    if access.mode == "one_time":
        return "They can look once."
    if access.max_reads is None:
        how = "more than once"
    else:
        how = f"up to {access.max_reads} time{'' if access.max_reads == 1 else 's'}"
    if access.interval is not None:
        every = describe_duration(access.interval)
        if every.startswith("1 ") and " and " not in every:
            every = every[2:]  # "once every day", not "once every 1 day"
        how += f", and no more often than once every {every}"
    return f"They can look {how}."


def plain_terms(
    terms: GrantTerms, *, service_name: str, purpose: Purpose | None = None,
    at: Callable[[datetime], str] = _when,
) -> PlainTerms:
    """The consent screen's sentences, from the same terms that are hashed.

    `purpose` defaults to the catalog's entry for `terms.purpose`; `at` writes a time
    (UTC by default, as receipts do; the wallet passes its Europe/London clock).
    """
    if purpose is None:
        purpose = purpose_catalog()[terms.purpose]
    sees = answers = adds = may_change = None
    labels = ", ".join(category_catalog()[c].label if c in category_catalog() else c
                       for c in terms.categories)
    if terms.categories and terms.can_read:
        sees = f"They will see: {labels}."
    if terms.derived:
        answers = ("They will only get a yes or no answer (not your details) to: "
                   + "; ".join(resolve_derived(d).label for d in terms.derived) + ".")
        issued = [resolve_derived(d).label for d in terms.derived
                  if resolve_derived(d).issued_only]
        if issued:  # ARCHITECTURE §8: these rest on issued facts, not on the citizen's word
            answers += (" Only what the service that issues it added to your vault counts "
                        "for: " + "; ".join(issued) + " (not anything you typed in).")
    intro = f"{service_name} is asking to use some of your information."
    how_often = _how_often(terms.access)
    keep: str | None = None
    if terms.can_write:
        # Said first and plainly: this puts something in the vault, it does not take.
        changes = "may change or withdraw what they added while this lasts"
        adds = f"They will add to your vault, and {changes}: {labels}."
        may_change = f"They {changes}."
        intro = (f"{service_name} is asking to add information to your vault"
                 + (", and to see it." if terms.can_read else "."))
    if terms.can_read:
        life = parse_duration(terms.data_life)
        keep = (f"They may keep what they see for {describe_duration(life)}, then they must "
                "delete it." if life else
                "They must not keep what they see: they use it and then delete it.")
    else:
        how_often = ("This does not let them see anything in your vault: they can only "
                     "add to it.")
    return PlainTerms(
        intro=intro, adds=adds, may_change=may_change,
        why=f"Why: {purpose.text}",
        sees=sees, answers=answers,
        when=(f"From {at(terms.starts)} until {at(terms.ends)} "
              f"({describe_duration(terms.ends - terms.starts)})."),
        how_often=how_often,
        keep=keep,
        justification=f"What they told us: \u201c{terms.justification}\u201d",
        law=f"The law they rely on: {purpose.lawful_basis_text}.",
        rights="You can say no. If you say yes, you can pause it or stop it at any time.")


def describe(
    terms: GrantTerms, *, service_name: str, purpose: Purpose | None = None
) -> list[str]:
    """Plain-English lines for the consent screen, from the same terms that are hashed."""
    return plain_terms(terms, service_name=service_name, purpose=purpose).lines()
