"""Grant rules as the auditor reads them off the ledger (ARCHITECTURE §3).

The state machine, the challenge a citizen signs for pause, resume and revoke, and the
shape of grant terms, written out again here rather than imported from `vault.domain`,
so that the auditor trusts no code of the vault it audits. Tests compare each with the
vault's own (`next_state`, `action_challenge`, `GrantTerms`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ledger.canonical import canonical_json

__all__ = [
    "ACTIONS",
    "CITIZEN_ERASED",
    "LIVE_STATES",
    "OPTIONAL_TERMS_KEYS",
    "READ_ONLY",
    "TERMS_ACTIONS",
    "TERMS_KEYS",
    "TRANSITIONS",
    "Terms",
    "TermsInvalid",
    "action_challenge",
    "b64_strict",
    "duration_ms",
    "parse_terms",
    "time_ms",
]

#: The state machine by entry kind: the grant's state before -> its state after.
TRANSITIONS: Mapping[str, Mapping[str, str]] = {
    "grant.approved": {"requested": "approved"},
    "grant.denied": {"requested": "denied"},
    "grant.cancelled": {"requested": "cancelled"},
    "grant.lapsed": {"requested": "lapsed"},
    "grant.paused": {"approved": "paused"},
    "grant.resumed": {"paused": "approved"},
    "grant.revoked": {"approved": "revoked", "paused": "revoked"},
    "grant.expired": {"approved": "expired", "paused": "expired"},
    "grant.exhausted": {"approved": "exhausted", "paused": "exhausted"},
}
#: States a grant can still leave.
LIVE_STATES = frozenset({"requested", "approved", "paused"})
#: The action a citizen signs for each signed entry other than the approval.
ACTIONS: Mapping[str, str] = {
    "grant.paused": "pause", "grant.resumed": "resume", "grant.revoked": "revoke",
}
#: The reason the vault writes on the grants it ends itself when a citizen is erased.
CITIZEN_ERASED = "citizen_erased"
TERMS_KEYS = frozenset({"grant_id", "service_id", "purpose", "categories", "derived",
                        "not_before", "expires_at", "access", "data_life", "justification"})
#: RFC 9396 §2.2 `actions`, written in the terms only when it is not ["read"] (so terms
#: that only read have the very keys, and hash, they had before issuers: ARCHITECTURE §8).
OPTIONAL_TERMS_KEYS = frozenset({"actions"})
TERMS_ACTIONS = frozenset({"read", "write"})
READ_ONLY = frozenset({"read"})
MAX_READS = 1_000_000

_TERMS_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
# ISO 8601 durations of whole days, hours, minutes and seconds (no years, months, weeks).
_DURATION = re.compile(
    r"P(?:([0-9]{1,9})D)?(?:T(?:([0-9]{1,9})H)?(?:([0-9]{1,9})M)?(?:([0-9]{1,9})S)?)?")
_EPOCH = datetime(1970, 1, 1)
_MS = timedelta(milliseconds=1)


def action_challenge(*, grant_id: str, action: str, terms_hash: bytes, after: int) -> bytes:
    """What the citizen signs to pause, resume or revoke: SHA-256 of the JCS of
    {action, after, grant_id, terms_hash (hex)}, `after` being the index of the grant's
    latest grant.* entry (reads do not count): one signature serves one action on one
    grant at one point of its story."""
    return hashlib.sha256(canonical_json({
        "action": action, "after": after, "grant_id": grant_id,
        "terms_hash": terms_hash.hex()})).digest()


class TermsInvalid(ValueError):
    """Grant terms that are not of the shape the vault writes."""


def b64_strict(text: Any) -> bytes | None:
    """Standard base64 in its one canonical spelling, or None."""
    if type(text) is not str:
        return None
    try:
        raw = binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        return None
    return raw if base64.b64encode(raw).decode() == text else None


def duration_ms(text: Any) -> int | None:
    """Milliseconds of a duration as terms write it (`P30D`, `PT1H30M`), or None."""
    m = _DURATION.fullmatch(text) if type(text) is str else None
    if m is None or text in ("P", "PT") or text.endswith("T"):
        return None
    d, h, mi, s = (int(g) if g else 0 for g in m.groups())
    return (((d * 24 + h) * 60 + mi) * 60 + s) * 1000


def time_ms(time: str) -> int:
    """Milliseconds since 1970 of an entry time such as 2026-11-22T10:04:05.123Z
    (ValueError if it is not one)."""
    return (datetime.fromisoformat(time[:-1]) - _EPOCH) // _MS


def _entry_time(terms_time: Any) -> str | None:
    """A terms time (2026-03-01T09:00:00Z) spelt as entry times are
    (2026-03-01T09:00:00.000Z), so that the two compare as text; None if not a time."""
    if type(terms_time) is not str or not _TERMS_TIME.fullmatch(terms_time):
        return None
    try:
        datetime.fromisoformat(terms_time[:-1])
    except ValueError:
        return None
    return terms_time[:-1] + ".000Z"


@dataclass(frozen=True, slots=True)
class Terms:
    """What the auditor needs of grant terms; times in entry form."""

    start: str
    end: str
    categories: frozenset[str]
    derived: frozenset[str]
    limit: int | None  # reads allowed in all (one_time: 1); None: no count
    interval_ms: int | None
    purpose: str
    #: "read" and/or "write": a grant only to write allows no read.
    actions: frozenset[str] = READ_ONLY

    @property
    def reads(self) -> frozenset[str]:
        """The categories a read may cover (none, for a grant only to write)."""
        return self.categories if "read" in self.actions else frozenset()

    @property
    def read_derived(self) -> frozenset[str]:
        return self.derived if "read" in self.actions else frozenset()

    @property
    def writes(self) -> frozenset[str]:
        """The categories the service may write under the grant (an issuer's)."""
        return self.categories if "write" in self.actions else frozenset()

    @property
    def days(self) -> float:
        return (time_ms(self.end) - time_ms(self.start)) / 86_400_000


def _names(value: Any, what: str) -> list[str]:
    if type(value) is not list or not all(type(x) is str for x in value):
        raise TermsInvalid(f"{what} must be a list of text")
    if value != sorted(set(value)):
        raise TermsInvalid(f"{what} must be sorted, without repeats")
    return value


def _access(a: Any) -> tuple[int | None, int | None]:
    """(read limit, min interval in ms) of the terms' access."""
    if type(a) is not dict or set(a) != {"mode", "max_reads", "min_interval"}:
        raise TermsInvalid("access must hold exactly mode, max_reads and min_interval")
    mode, reads, interval = a["mode"], a["max_reads"], a["min_interval"]
    if mode == "one_time":
        if reads is not None or interval is not None:
            raise TermsInvalid("one_time access has no max_reads or min_interval")
        return 1, None
    if mode != "periodic":
        raise TermsInvalid("access mode must be one_time or periodic")
    if reads is None and interval is None:
        raise TermsInvalid("periodic access needs max_reads, min_interval or both")
    if reads is not None and (type(reads) is not int or not 1 <= reads <= MAX_READS):
        raise TermsInvalid(f"max_reads must be a whole number from 1 to {MAX_READS}")
    every = None if interval is None else duration_ms(interval)
    if interval is not None and not every:
        raise TermsInvalid("min_interval must be a duration such as PT1H")
    return reads, every


def _actions(t: dict[str, Any]) -> frozenset[str]:
    if "actions" not in t:
        return READ_ONLY
    actions = _names(t["actions"], "actions")
    if not actions or not TERMS_ACTIONS.issuperset(actions):
        raise TermsInvalid("actions must be read, write or both")
    if actions == ["read"]:
        raise TermsInvalid('terms that only read leave actions out (["read"] is the default)')
    return frozenset(actions)


def parse_terms(t: Any) -> Terms:
    """The auditor's reading of `grant.requested` terms; TermsInvalid if malformed."""
    if type(t) is not dict or not TERMS_KEYS <= set(t) <= TERMS_KEYS | OPTIONAL_TERMS_KEYS:
        raise TermsInvalid("terms must hold exactly " + ", ".join(sorted(TERMS_KEYS))
                           + ", and may hold actions")
    categories, derived = _names(t["categories"], "categories"), _names(t["derived"], "derived")
    actions = _actions(t)
    if "write" in actions and (derived or not categories):
        raise TermsInvalid("terms that write name categories and no derived answers")
    start, end = _entry_time(t["not_before"]), _entry_time(t["expires_at"])
    if start is None or end is None or end <= start:
        raise TermsInvalid("not_before and expires_at must be UTC times, the end after the "
                           "start")
    limit, interval = _access(t["access"])
    if duration_ms(t["data_life"]) is None:
        raise TermsInvalid("data_life must be a duration such as P30D")
    if type(t["purpose"]) is not str or type(t["justification"]) is not str:
        raise TermsInvalid("purpose and justification must be text")
    return Terms(start, end, frozenset(categories), frozenset(derived), limit, interval,
                 t["purpose"], actions)
