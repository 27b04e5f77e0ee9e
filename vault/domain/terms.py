"""Grant terms: what a service asked for, fixed once requested, and their hash.

`terms_hash` is SHA-256 of the RFC 8785 canonical JSON of `to_json()` (ARCHITECTURE §3);
it is the challenge the citizen's passkey signs on approval, so the JSON form is a
contract: times are RFC 3339 UTC with whole seconds ("2026-03-01T09:00:00Z"), lists are
sorted and de-duplicated, durations are in canonical form (`durations.format_duration`),
and every key is always present (`null` where unset), but one: `actions`.

`actions` (RFC 9396 §2.2: what the service may do with the categories; ARCHITECTURE §8)
is "read", "write" or both. It is written only when it is not `["read"]`: terms that only
read, which is every grant made before issuers existed, keep exactly the JSON, and so the
hash, that citizens' passkeys signed and the ledger holds. A write grant lets the service
add to the vault the categories it names (its registration must say it issues them);
without "read" it does not let it read them. Derived answers cannot be written, so a
grant that writes names none. `access` limits reads only.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from ledger.canonical import canonical_json
from vault.domain.durations import format_duration, parse_duration
from vault.domain.errors import GrantRefused, InvalidDuration

__all__ = [
    "ACTIONS",
    "MAX_DATA_LIFE",
    "MAX_MIN_INTERVAL",
    "MAX_READS_LIMIT",
    "READ_ONLY",
    "Access",
    "GrantTerms",
    "check_actions",
    "format_utc",
    "parse_utc",
]

MAX_DATA_LIFE = timedelta(days=3650)
MAX_READS_LIMIT = 1_000_000
MAX_MIN_INTERVAL = timedelta(days=3650)
#: What a grant may let a service do (RFC 9396 §2.2 `actions`), and the default.
ACTIONS = ("read", "write")
READ_ONLY: tuple[str, ...] = ("read",)


# --- times: RFC 3339 UTC with whole seconds, e.g. 2026-03-01T09:00:00Z ---

_UTC_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


def _aware(name: str, value: datetime) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return value.astimezone(UTC)


def format_utc(value: datetime) -> str:
    """`value` as terms hold it: UTC, whole seconds (fractions are dropped), trailing Z."""
    v = _aware("time", value)
    # Written field by field: strftime's %Y does not pad years before 1000 on every libc.
    return f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:{v.second:02d}Z"


def parse_utc(text: str) -> datetime:
    """An aware UTC datetime from terms' time text; GrantRefused if it is not that form."""
    if not isinstance(text, str) or not _UTC_TEXT.fullmatch(text):
        raise GrantRefused("times must be written like 2026-03-01T09:00:00Z (UTC, whole seconds)")
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise GrantRefused(f"'{text}' is not a real date and time") from None


# --- terms ---

_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")
_PURPOSE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_CATEGORY = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _duration(field: str, value: Any) -> timedelta:
    try:
        return parse_duration(value)
    except InvalidDuration as exc:
        raise GrantRefused(f"{field}: {exc}") from None


@dataclass(frozen=True)
class Access:
    """How often the service may read: once, or periodically (a count and/or a spacing)."""

    mode: Literal["one_time", "periodic"]
    max_reads: int | None = None
    min_interval: str | None = None

    def __post_init__(self) -> None:
        if self.mode == "one_time":
            if self.max_reads not in (None, 1) or type(self.max_reads) is bool:
                raise GrantRefused("one-time access allows exactly one read (max_reads 1 or none)")
            if self.min_interval is not None:
                raise GrantRefused("one-time access cannot have a min_interval")
            object.__setattr__(self, "max_reads", None)  # one spelling: one read is implied
            return
        if self.mode != "periodic":
            raise GrantRefused("access mode must be 'one_time' or 'periodic'")
        if self.max_reads is None and self.min_interval is None:
            raise GrantRefused("periodic access needs max_reads, min_interval or both")
        if self.max_reads is not None and (
            type(self.max_reads) is not int or not 1 <= self.max_reads <= MAX_READS_LIMIT
        ):
            raise GrantRefused(f"max_reads must be a whole number from 1 to {MAX_READS_LIMIT}")
        if self.min_interval is not None:
            interval = _duration("min_interval", self.min_interval)
            if not timedelta(seconds=1) <= interval <= MAX_MIN_INTERVAL:
                raise GrantRefused("min_interval must be at least 1 second and at most 3650 days")
            object.__setattr__(self, "min_interval", format_duration(interval))

    @property
    def interval(self) -> timedelta | None:
        return None if self.min_interval is None else parse_duration(self.min_interval)

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "max_reads": self.max_reads, "min_interval": self.min_interval}

    @classmethod
    def from_json(cls, obj: Any) -> Access:
        """Access from JSON; `max_reads` and `min_interval` may be left out (meaning null)."""
        if not isinstance(obj, Mapping) or "mode" not in obj:
            raise GrantRefused("access must be a JSON object with a mode")
        _exact_keys("access", {"max_reads": None, "min_interval": None, **obj},
                    ("mode", "max_reads", "min_interval"))
        return cls(mode=obj["mode"], max_reads=obj.get("max_reads"),
                   min_interval=obj.get("min_interval"))


def _exact_keys(what: str, obj: Any, keys: Sequence[str]) -> None:
    if not isinstance(obj, Mapping):
        raise GrantRefused(f"{what} must be a JSON object")
    missing = [k for k in keys if k not in obj]
    extra = sorted(str(k) for k in obj if k not in keys)
    if missing:
        raise GrantRefused(f"{what} is missing {', '.join(missing)}")
    if extra:
        raise GrantRefused(f"{what} has unexpected field(s): {', '.join(extra)[:200]}")


def _names(field: str, values: Any, pattern: re.Pattern[str] | None) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, Sequence | set | frozenset):
        raise GrantRefused(f"{field} must be a list")
    for v in values:
        if not isinstance(v, str):
            raise GrantRefused(f"every entry of {field} must be text")
        if pattern is not None and not pattern.fullmatch(v):
            raise GrantRefused(f"'{v[:60]}' is not a valid entry for {field}")
        if pattern is None and (not 0 < len(v) <= 200 or _has_controls(v)):
            raise GrantRefused(
                f"every entry of {field} must be 1 to 200 characters, without control characters"
            )
    return tuple(sorted(set(values)))


def _has_controls(text: str) -> bool:
    # Control, surrogate, line/paragraph separators and bidi overrides could garble or
    # disguise what the consent screen shows (and surrogates cannot be encoded at all).
    return any(unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") or c in _BIDI for c in text)


def _check_justification(text: Any) -> None:
    if not isinstance(text, str) or not text.strip():
        raise GrantRefused("a justification (1 to 500 characters) is needed")
    if len(text) > 500:
        raise GrantRefused("the justification must be at most 500 characters")
    if _has_controls(text):
        raise GrantRefused("the justification must not contain control characters")


_TERMS_KEYS = (
    "grant_id", "service_id", "purpose", "categories", "derived", "not_before",
    "expires_at", "access", "data_life", "justification",
)


def check_actions(value: Any) -> tuple[str, ...]:
    """`actions` sorted and de-duplicated; GrantRefused unless a non-empty list of
    "read" and/or "write"."""
    if isinstance(value, str) or not isinstance(value, Sequence | set | frozenset):
        raise GrantRefused('actions must be a list: ["read"], ["write"] or both')
    if not value:
        raise GrantRefused('actions must not be empty: ["read"], ["write"] or both')
    for v in value:
        if not isinstance(v, str) or v not in ACTIONS:
            raise GrantRefused(f"'{str(v)[:40]}' is not an action: the actions are "
                               "read and write")
    return tuple(sorted(set(value)))


@dataclass(frozen=True)
class GrantTerms:
    """What the service asked for; fixed once requested. Construction validates the shape."""

    grant_id: str
    service_id: str
    purpose: str
    categories: tuple[str, ...]
    derived: tuple[str, ...]
    not_before: str
    expires_at: str
    access: Access
    data_life: str
    justification: str
    actions: tuple[str, ...] = READ_ONLY

    def __post_init__(self) -> None:
        for field in ("grant_id", "service_id"):
            value = getattr(self, field)
            if not isinstance(value, str) or not _ID.fullmatch(value):
                raise GrantRefused(f"{field} must be 1 to 100 letters, digits, '_' or '-'")
        if not isinstance(self.purpose, str) or not _PURPOSE.fullmatch(self.purpose):
            raise GrantRefused("purpose must be a purpose code such as service_provision")
        object.__setattr__(self, "categories", _names("categories", self.categories, _CATEGORY))
        object.__setattr__(self, "derived", _names("derived", self.derived, None))
        start, end = parse_utc(self.not_before), parse_utc(self.expires_at)
        if end <= start:
            raise GrantRefused("expires_at must be after not_before")
        if not isinstance(self.access, Access):
            raise GrantRefused("access must be an Access")
        life = _duration("data_life", self.data_life)
        if life > MAX_DATA_LIFE:
            raise GrantRefused("data_life must be at most 3650 days")
        object.__setattr__(self, "data_life", format_duration(life))
        _check_justification(self.justification)
        object.__setattr__(self, "actions", check_actions(self.actions))
        if self.can_write:
            if self.derived:
                raise GrantRefused("a grant that writes cannot name derived answers: they "
                                   "are computed by the vault, never written")
            if not self.categories:
                raise GrantRefused("a grant that writes must name the categories it writes")

    @property
    def can_read(self) -> bool:
        """Whether the grant lets the service read (its categories and derived answers)."""
        return "read" in self.actions

    @property
    def can_write(self) -> bool:
        """Whether the grant lets the service add its categories to the vault."""
        return "write" in self.actions

    @property
    def starts(self) -> datetime:
        return parse_utc(self.not_before)

    @property
    def ends(self) -> datetime:
        return parse_utc(self.expires_at)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (no floats): what `grant.requested` records and `terms_hash` covers.
        `actions` only when it is not ["read"] (see the module's docstring)."""
        obj: dict[str, Any] = {
            "grant_id": self.grant_id,
            "service_id": self.service_id,
            "purpose": self.purpose,
            "categories": list(self.categories),
            "derived": list(self.derived),
            "not_before": self.not_before,
            "expires_at": self.expires_at,
            "access": self.access.to_json(),
            "data_life": self.data_life,
            "justification": self.justification,
        }
        if self.actions != READ_ONLY:
            obj["actions"] = list(self.actions)
        return obj

    @classmethod
    def from_json(cls, obj: Any) -> GrantTerms:
        """Terms from their JSON form; GrantRefused if the shape or any value is wrong.

        `actions` may be left out (meaning ["read"]), and only then: written out as
        ["read"] it is not the terms' one JSON form, whose hash is what was signed.
        """
        keys = (*_TERMS_KEYS, "actions") if isinstance(obj, Mapping) and "actions" in obj \
            else _TERMS_KEYS
        _exact_keys("grant terms", obj, keys)
        fields = {k: obj[k] for k in keys}
        fields["access"] = Access.from_json(obj["access"])
        if "actions" in obj and check_actions(obj["actions"]) == READ_ONLY:
            raise GrantRefused('terms that only read leave actions out (["read"] is the '
                               "default)")
        return cls(**fields)

    def terms_hash(self) -> bytes:
        """SHA-256 of the RFC 8785 canonical JSON of `to_json()` (32 bytes)."""
        return hashlib.sha256(canonical_json(self.to_json())).digest()
