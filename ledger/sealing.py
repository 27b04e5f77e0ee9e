"""Which parts of an entry's body anyone may read, and the commitment to the rest.

A v2 entry (ARCHITECTURE §10) shows a `public` part and hashes only a commitment to its
`private` part: `sealed = SHA-256(salt || JCS(private))` with a fresh 32-byte salt. The
opening `(salt, private)` is kept beside the entry and given to auditors and to the
citizen's own receipts. So the public ledger must hold no value that ties two services'
grants to one person: everything per citizen (pseudonymous subject, actor, record ids,
versions, credential ids, COSE keys, assertions, commitments) is private.

What stays public is what transparency counts need: service ids, grant ids and terms,
categories and derived names, issuers, states. A service knows its own grant ids; with
the subject sealed, a grant id leads to that grant's own entries and no further.

Grants ended by an erasure are written one after another in one transaction: public
service ids there would tell each service which others its citizen used. Their public
part is only the month the grant was asked for and the state it left (what the counts
need); the grant and service ids are sealed with the subject.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from ledger.canonical import canonical_json
from ledger.errors import EncodingError

__all__ = ["ERASED", "PUBLIC_FIELDS", "SALT_SIZE", "commitment", "public_fields", "split"]

SALT_SIZE = 32

#: Every field public: entries about services and keys, never about a citizen.
_ALL = None

_GRANT_STEP = frozenset({"grant_id", "service_id", "reason"})

#: kind -> the body fields that are public (`None`: all of them). A kind not listed is
#: wholly private: a new kind must be added here before anything of it is published.
PUBLIC_FIELDS: Mapping[str, frozenset[str] | None] = {
    "service.registered": _ALL,
    "service.suspended": _ALL,
    "key.rotated": _ALL,
    "citizen.enrolled": frozenset(),
    "citizen.erased": frozenset(),
    "passkey.registered": frozenset(),
    "passkey.removed": frozenset(),
    "grant.requested": frozenset({"grant_id", "service_id", "terms", "terms_hash"}),
    **{f"grant.{step}": _GRANT_STEP for step in (
        "approved", "denied", "cancelled", "paused", "resumed", "revoked", "expired",
        "exhausted")},
    "data.accessed": frozenset({"grant_id", "service_id", "categories", "derived",
                                "issuers", "sources"}),
    "record.written": frozenset({"category", "source", "issuer", "grant_id", "items"}),
    "record.withdrawn": frozenset({"category", "issuer", "grant_id"}),
    "record.disputed": frozenset({"category", "issuer"}),
    "record.deleted": frozenset({"category"}),
}

#: The `reason` of a grant's end written by an erasure, and the public fields such an
#: entry has instead of `_GRANT_STEP`: "asked" (YYYY-MM, UTC) and "from" (the state it left).
ERASED = "citizen_erased"
_ERASED_PUBLIC = frozenset({"reason", "asked", "from"})


def public_fields(kind: str, body: Mapping[str, Any]) -> frozenset[str] | None:
    """The names of `body`'s public fields (`None`: all of them)."""
    if kind.startswith("grant.") and body.get("reason") == ERASED:
        return _ERASED_PUBLIC
    return PUBLIC_FIELDS.get(kind, frozenset())


def split(kind: str, body: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """`(public, private)`: the body's fields by `public_fields`, every field in one."""
    shown = public_fields(kind, body)
    if shown is None:
        return dict(body), {}
    public: dict[str, Any] = {}
    private: dict[str, Any] = {}
    for name, value in body.items():
        (public if name in shown else private)[name] = value
    return public, private


def commitment(salt: bytes, private: Mapping[str, Any]) -> bytes:
    """`SHA-256(salt || JCS(private))`: binds the entry to its private part, which
    the salt keeps from being guessed (a subject is one of few enough values to try)."""
    if len(salt) != SALT_SIZE:
        raise EncodingError(f"a salt is {SALT_SIZE} bytes, got {len(salt)}")
    return hashlib.sha256(salt + canonical_json(dict(private))).digest()
