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

import binascii
import hashlib
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import orjson

from ledger.canonical import canonical_json, check_value, encode_checked
from ledger.entry import SEALED_VERSION, Entry, decode_b64
from ledger.errors import EncodingError, LogInvalid

__all__ = [
    "ERASED",
    "PUBLIC_FIELDS",
    "SALT_SIZE",
    "Opening",
    "Sealed",
    "check_opening",
    "commitment",
    "encode_opening",
    "full_body",
    "parse_opening",
    "public_body",
    "public_fields",
    "seal",
    "split",
]

SALT_SIZE = 32

#: A new SHA-256 hasher: copying an empty one costs less than making one.
_new_sha256 = hashlib.sha256().copy

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
        "lapsed", "exhausted")},
    "data.accessed": frozenset({"grant_id", "service_id", "categories", "derived",
                                "issuers", "sources"}),
    "record.written": frozenset({"category", "source", "issuer", "grant_id", "items"}),
    "record.withdrawn": frozenset({"category", "issuer", "grant_id"}),
    "record.disputed": frozenset({"category", "issuer"}),
    "record.deleted": frozenset({"category"}),
    # Acting for others (ARCHITECTURE §9): how many relationships of each kind, and how
    # they ended, are public; who, and for whom, is not.
    "delegation.granted": frozenset({"relationship", "issuer"}),
    "delegation.revoked": frozenset({"by"}),
    "delegation.expired": frozenset(),
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


def public_body(entry: Entry) -> Mapping[str, Any]:
    """What anyone may read of an entry: a v2 entry's `public`, the public fields of a v1
    entry's body (so v1 and v2 ledgers count the same way)."""
    if entry.sealed is not None:
        return entry.body
    return split(entry.kind, entry.body)[0]


# -- openings ----------------------------------------------------------------------------


class Opening(NamedTuple):
    """What opens a v2 entry's `sealed`: its salt and private body (NDJSON line
    `{"private":{...},"salt":"<b64>","seq":N}`, ARCHITECTURE §10)."""

    seq: int
    salt: bytes
    private: Mapping[str, Any]


_OPENING_KEYS = frozenset({"seq", "salt", "private"})


def encode_opening(seq: int, salt: bytes, private: Mapping[str, Any]) -> bytes:
    """The canonical bytes of an opening (one NDJSON line, without the newline)."""
    if type(seq) is not int or seq < 0:
        raise EncodingError(f"seq must be a non-negative integer, got {seq!r}")
    if len(salt) != SALT_SIZE:
        raise EncodingError(f"a salt is {SALT_SIZE} bytes, got {len(salt)}")
    return _opening_bytes(seq, salt, canonical_json(dict(private)))


def _opening_bytes(seq: int, salt: bytes, private_json: bytes) -> bytes:
    # Keys in JCS order: private, salt, seq.
    return b"".join((b'{"private":', private_json, b',"salt":"',
                     binascii.b2a_base64(salt, newline=False),
                     b'","seq":', str(seq).encode(), b"}"))


def parse_opening(data: bytes) -> Opening:
    """Parse an opening line; EncodingError unless it is one in canonical form."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise EncodingError(f"not JSON: {exc}") from None
    if type(obj) is not dict or obj.keys() != _OPENING_KEYS:
        raise EncodingError("an opening has exactly the fields seq, salt, private")
    seq, private = obj["seq"], obj["private"]
    if type(seq) is not int or seq < 0:
        raise EncodingError(f"seq must be a non-negative integer, got {seq!r}")
    if type(private) is not dict:
        raise EncodingError("private must be a JSON object")
    salt = decode_b64(obj["salt"], "salt")
    if len(salt) != SALT_SIZE:
        raise EncodingError(f"a salt is {SALT_SIZE} bytes, got {len(salt)}")
    if encode_checked(obj, check_value(private, parsed_ascii=data.isascii())) != data:
        raise EncodingError("opening bytes are not in canonical (RFC 8785) form")
    return Opening(seq, salt, private)


def check_opening(entry: Entry, opening: Opening) -> dict[str, Any]:
    """The full body `{**public, **private}` of a v2 entry that `opening` opens.

    LogInvalid at the entry's index unless the opening is for this entry, its commitment
    is the entry's `sealed`, and the split of the full body by `PUBLIC_FIELDS` is the very
    split the entry shows (so nothing per citizen was published, and nothing the counts
    need was sealed).
    """
    i = entry.seq
    if entry.v != SEALED_VERSION or entry.sealed is None:
        raise LogInvalid(i, f"entry {i} is v{entry.v}: it is not sealed and has no opening")
    if opening.seq != i:
        raise LogInvalid(i, f"the opening is for entry {opening.seq}, not entry {i}")
    if commitment(opening.salt, opening.private) != entry.sealed:
        raise LogInvalid(i, "the opening does not match the entry's sealed commitment: "
                            "its salt or private body was altered")
    both = entry.body.keys() & opening.private.keys()
    if both:
        raise LogInvalid(i, f"fields {sorted(both)} are both public and private")
    full = {**entry.body, **opening.private}
    public, _ = split(entry.kind, full)
    if public != entry.body:
        raise LogInvalid(i, f"a {entry.kind} entry must show exactly the public fields "
                            f"{sorted(public)}, it shows {sorted(entry.body)}")
    return full


def full_body(entry: Entry, opening: Opening | None) -> Mapping[str, Any]:
    """A v1 entry's body, or a v2 entry's full body through its checked opening."""
    if entry.sealed is None:
        return entry.body
    if opening is None:
        raise LogInvalid(entry.seq, f"entry {entry.seq} is sealed and no opening was given")
    return check_opening(entry, opening)


# -- writing -----------------------------------------------------------------------------


class Sealed(NamedTuple):
    """A body split for a v2 entry: what goes in the bytes (also as canonical JSON), the
    commitment, and its opening's bytes."""

    public: dict[str, Any]
    public_json: bytes
    sealed: bytes
    opening: bytes


Salts = Callable[[int], bytes]


def seal(seq: int, kind: str, body: Mapping[str, Any], salt: bytes) -> Sealed:
    """Split `body` by `PUBLIC_FIELDS` and commit to the private part under `salt`, which
    must be fresh and random (`os.urandom`; a writer draws a batch's salts at once).

    One SHA-256 per entry; the private part is encoded once, for both the commitment and
    the opening.
    """
    if len(salt) != SALT_SIZE:
        raise EncodingError(f"a salt is {SALT_SIZE} bytes, got {len(salt)}")
    if not isinstance(body, dict):
        raise EncodingError("body must be a JSON object")
    astral = check_value(body)  # once for both parts: each is some of its fields
    public, private = split(kind, body)
    private_json = encode_checked(private, astral)
    hasher = _new_sha256()
    hasher.update(salt)
    hasher.update(private_json)
    return Sealed(public, encode_checked(public, astral), hasher.digest(),
                  _opening_bytes(seq, salt, private_json))
