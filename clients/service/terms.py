"""What a service asks for: the terms of a grant, sent as RFC 9396 authorization details.

`PersonalData(...).to_json()` is the one `personal_data` object the vault accepts in
`authorization_details`; the vault checks it against the service's registration and
answers `invalid_authorization_details` (a ProtocolError) when it goes beyond it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

__all__ = ["Access", "Action", "PersonalData", "format_duration", "format_time"]

AUTHORIZATION_DETAILS_TYPE = "personal_data"
#: What a grant lets the service do with its categories (RFC 9396 §2.2 `actions`):
#: read them, or write them into the citizen's vault (an issuer's grant, ARCHITECTURE §8).
Action = Literal["read", "write"]


def format_duration(value: str | timedelta) -> str:
    """ISO 8601 duration text: a string is passed through (the vault checks it), a
    timedelta is spelt in whole days, hours, minutes and seconds (`P1DT2H`)."""
    if isinstance(value, str):
        return value
    if not isinstance(value, timedelta):
        raise TypeError("a duration is ISO 8601 text (P30D) or a timedelta")
    if value < timedelta(0) or value.microseconds:
        raise ValueError("a duration must be a non-negative whole number of seconds")
    hours, rest = divmod(value.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"P{value.days}D" if value.days else "P"
    clock = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M"), (seconds, "S"))
                    if n)
    text += f"T{clock}" if clock else ""
    return "PT0S" if text == "P" else text


def format_time(value: str | datetime) -> str:
    """RFC 3339 UTC text with whole seconds (`2026-03-01T09:00:00Z`); a string passes."""
    if isinstance(value, str):
        return value
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError("times must be aware datetimes (or RFC 3339 text)")
    return value.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Access:
    """How often the service may read: once, or periodically (at most `max_reads`
    times, at least `min_interval` apart; either may be left unlimited)."""

    mode: Literal["one_time", "periodic"]
    max_reads: int | None = None
    min_interval: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("one_time", "periodic"):
            raise ValueError("access mode is one_time or periodic")
        if self.mode == "one_time" and (self.max_reads is not None or self.min_interval):
            raise ValueError("one_time access takes no max_reads or min_interval")
        if self.max_reads is not None and (isinstance(self.max_reads, bool)
                                           or not isinstance(self.max_reads, int)
                                           or self.max_reads < 1):
            raise ValueError("max_reads must be a positive whole number")

    @classmethod
    def one_time(cls) -> Access:
        """A single read; the grant is exhausted after it."""
        return cls("one_time")

    @classmethod
    def periodic(cls, *, max_reads: int | None = None,
                 min_interval: str | timedelta | None = None) -> Access:
        """Repeated reads, optionally capped and spaced out."""
        interval = None if min_interval is None else format_duration(min_interval)
        return cls("periodic", max_reads=max_reads, min_interval=interval)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"mode": self.mode}
        if self.max_reads is not None:
            doc["max_reads"] = self.max_reads
        if self.min_interval is not None:
            doc["min_interval"] = self.min_interval
        return doc


def _texts(value: Sequence[str], name: str) -> tuple[str, ...]:
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"{name} must be a list of names, not a single string")
    return tuple(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class PersonalData:
    """The terms a service asks the citizen to agree to.

    The grant ends after `duration` (from approval; ISO 8601 or a timedelta) or at
    `expires_at`: exactly one of them. `data_life` is how long the service will keep
    what it reads; `justification` is shown to the citizen, in plain words.
    `actions` is ["read"] by default; ["write"] asks to add the categories to the
    citizen's vault (the service must be registered to issue them, and name no derived
    answers); ["read", "write"] both. It is sent only when it is not ["read"].
    """

    purpose: str
    access: Access
    data_life: str | timedelta
    justification: str
    categories: Sequence[str] = ()
    derived: Sequence[str] = ()
    duration: str | timedelta | None = None
    expires_at: str | datetime | None = None
    not_before: str | datetime | None = None
    actions: Sequence[Action] = ("read",)

    def __post_init__(self) -> None:
        object.__setattr__(self, "categories", _texts(self.categories, "categories"))
        object.__setattr__(self, "derived", _texts(self.derived, "derived"))
        actions = _texts(self.actions, "actions")
        if not actions or not set(actions) <= set(get_args(Action)):
            raise ValueError('actions is ["read"], ["write"] or ["read", "write"]')
        object.__setattr__(self, "actions", tuple(sorted(set(actions))))
        if "write" in self.actions and (self.derived or not self.categories):
            raise ValueError("a grant to write names the categories it writes, and no "
                             "derived answers")
        if (self.duration is None) == (self.expires_at is None):
            raise ValueError("give exactly one of duration and expires_at")
        if not isinstance(self.access, Access):
            raise TypeError("access is Access.one_time() or Access.periodic(...)")

    def to_json(self) -> dict[str, Any]:
        """The RFC 9396 authorization details object (type `personal_data`)."""
        doc: dict[str, Any] = {"type": AUTHORIZATION_DETAILS_TYPE}
        if self.actions != ("read",):
            doc["actions"] = list(self.actions)
        doc.update(purpose=self.purpose, categories=list(self.categories),
                   derived=list(self.derived))
        if self.duration is not None:
            doc["duration"] = format_duration(self.duration)
        if self.expires_at is not None:
            doc["expires_at"] = format_time(self.expires_at)
        if self.not_before is not None:
            doc["not_before"] = format_time(self.not_before)
        doc["access"] = self.access.to_json()
        doc["data_life"] = format_duration(self.data_life)
        doc["justification"] = self.justification
        return doc
