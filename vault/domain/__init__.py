"""The vault's domain rules, pure: no web framework, no SQL, no keys.

Categories and purposes (catalogs kept as package data), derived answers, service
registrations, grant terms and the grant state machine.
"""

from vault.domain.categories import Category, categories, clean_value, validate_value
from vault.domain.derived import DerivedAnswer, resolve_derived, static_derived_names
from vault.domain.durations import describe_duration, format_duration, parse_duration
from vault.domain.errors import (
    ACCESS_REASONS,
    AccessDenied,
    DomainError,
    GrantRefused,
    IllegalTransition,
    InvalidDuration,
    InvalidService,
    InvalidValue,
    UnknownDerived,
)
from vault.domain.grants import (
    ACTIVE_STATES,
    ENTRY_KIND,
    FINAL_STATES,
    LAPSE_AFTER,
    LIVE_STATES,
    GrantAction,
    GrantState,
    allowed_actions,
    check_read,
    check_scope,
    describe,
    exhausted_after,
    is_final,
    lapse_deadline,
    next_state,
    read_limit,
    request_terms,
)
from vault.domain.purposes import Purpose, purposes
from vault.domain.services import ServiceProfile, validate_registration
from vault.domain.terms import Access, GrantTerms, format_utc, parse_utc

__all__ = [
    "ACCESS_REASONS",
    "ACTIVE_STATES",
    "ENTRY_KIND",
    "FINAL_STATES",
    "LAPSE_AFTER",
    "LIVE_STATES",
    "Access",
    "AccessDenied",
    "Category",
    "DerivedAnswer",
    "DomainError",
    "GrantAction",
    "GrantRefused",
    "GrantState",
    "GrantTerms",
    "IllegalTransition",
    "InvalidDuration",
    "InvalidService",
    "InvalidValue",
    "Purpose",
    "ServiceProfile",
    "UnknownDerived",
    "allowed_actions",
    "categories",
    "check_read",
    "check_scope",
    "clean_value",
    "describe",
    "describe_duration",
    "exhausted_after",
    "format_duration",
    "format_utc",
    "is_final",
    "lapse_deadline",
    "next_state",
    "parse_duration",
    "parse_utc",
    "purposes",
    "read_limit",
    "request_terms",
    "resolve_derived",
    "static_derived_names",
    "validate_registration",
    "validate_value",
]
