"""Errors raised by the vault's domain rules (records, services, grants).

VaultError (vault.errors)
└── DomainError            a rule of the domain was broken
    ├── InvalidValue       a record value fails its category's schema, or the category is unknown
    ├── InvalidDuration    text that is not a duration the vault accepts (ISO 8601, days or less)
    ├── InvalidService     a service registration that cannot be accepted
    ├── GrantRefused       a grant request outside what the service is registered for
    ├── IllegalTransition  an action a grant in its current state cannot take (attrs state, action)
    ├── AccessDenied       a read the grant does not allow now (attr reason, from ACCESS_REASONS)
    ├── AskingRefused      a service may not ask this citizen now (attr reason, from ASKING_REASONS)
    ├── RecordConflict     a change a record's current state does not allow (an issued value)
    └── UnknownDerived     a derived-answer name the vault does not know

Every message is plain English: it becomes an RFC 9457 problem detail or a CLI message.
Messages never quote record values (they may be personal data), only field names and rules.
"""

from __future__ import annotations

from vault.errors import VaultError

__all__ = [
    "ACCESS_REASONS",
    "ASKING_REASONS",
    "AccessDenied",
    "AskingRefused",
    "DomainError",
    "GrantRefused",
    "IllegalTransition",
    "InvalidDuration",
    "InvalidService",
    "InvalidValue",
    "RecordConflict",
    "UnknownDerived",
]


class DomainError(VaultError):
    """Base of every error raised by `vault.domain`."""


class InvalidValue(DomainError):
    """A record value does not fit its category's JSON Schema, or the category is unknown."""


class InvalidDuration(DomainError):
    """Text that is not an accepted ISO 8601 duration (days, hours, minutes, seconds)."""


class InvalidService(DomainError):
    """A service registration with a missing, unknown or unsafe field."""


class GrantRefused(DomainError):
    """A grant request (or stored terms) outside what is allowed; the message says why."""


class IllegalTransition(DomainError):
    """The grant's state does not allow this action (e.g. resuming a revoked grant)."""

    def __init__(self, state: str, action: str) -> None:
        self.state = str(state)
        self.action = str(action)
        super().__init__(f"a grant that is {self.state} cannot take the action '{self.action}'")


#: Why a read was refused, with the plain-English default message for each.
ACCESS_REASONS: dict[str, str] = {
    "not_approved": "the citizen has not approved this grant",
    "paused": "the citizen has paused this grant",
    "revoked": "the citizen has revoked this grant",
    "expired": "this grant has expired",
    "exhausted": "this grant has been used as many times as it allows",
    "not_yet_valid": "this grant does not start yet",
    "too_soon": "this grant does not allow another read so soon after the last one",
    "service_suspended": "the service has been suspended by the vault operator",
    "out_of_scope": "this grant does not cover what was asked for",
    # RFC 6750 §3.1: a write under a read grant, a read under a write grant, a category
    # outside the grant (answered with a Bearer challenge naming it).
    "insufficient_scope": "this grant does not let the service do this",
}


class AccessDenied(DomainError):
    """A read that the grant does not allow at this moment; `reason` says which rule."""

    def __init__(self, reason: str, message: str | None = None) -> None:
        if reason not in ACCESS_REASONS:
            raise ValueError(f"unknown access-denied reason {reason!r}")
        self.reason = reason
        super().__init__(message or ACCESS_REASONS[reason])


#: Why a service may not ask a citizen now, with the plain-English default message for each.
ASKING_REASONS: dict[str, str] = {
    "blocked": "the citizen has stopped this service asking",
    "too_many_waiting": "this service already has as many requests waiting for this "
                        "citizen's answer as it may have",
}


class AskingRefused(DomainError):
    """A service may not ask this citizen for a grant now; `reason` says which rule
    (`vault.domain.asking`). Nothing was recorded."""

    def __init__(self, reason: str, message: str | None = None) -> None:
        if reason not in ASKING_REASONS:
            raise ValueError(f"unknown asking-refused reason {reason!r}")
        self.reason = reason
        super().__init__(message or ASKING_REASONS[reason])


class RecordConflict(DomainError):
    """A change the record's current state does not allow: the citizen changing or
    deleting a value a service issued (it is the issuer's to change, ARCHITECTURE §8), or
    acting on a version that is no longer the newest. The message says which."""


class UnknownDerived(DomainError):
    """A derived-answer name that is not registered."""
