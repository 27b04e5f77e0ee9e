"""A record an issuer signed (ARCHITECTURE §8), checked before the vault takes it.

The record is a compact JWS, ES256, header `{"alg":"ES256","typ":"record+jwt","kid"}`,
payload `{"iss", "category", "value", "iat", "jti"}` and an optional `exp`, signed by a
key of the issuer's registered JWKS. `value` is any JSON value but null (an object, a
string, an array: whatever its category's schema takes, which the caller checks; a date
of birth is a string); there is no null record (an issuer withdraws one instead). Its
form is read by `_jws.parse_jws`, the same strict reader as every token (canonical
base64url, JSON objects without duplicate members, `alg` exactly ES256, no
`crit`/`jku`/`jwk`/`x5u`/`x5c`/`b64` header), and its signature checked by
`_jws.verify_es256` (python-jose, the algorithm pinned).

Each refusal is its own class with a `reason`, so the write endpoint answers a problem
that says which rule failed:

VaultError (vault.errors)
└── InvalidRequest (vault.errors)
    └── RecordRefused              base; `reason` is the code
        ├── RecordTooLarge         too_large: over `max_bytes` (64 KiB), before parsing
        ├── RecordMalformed        malformed: not a compact ES256 JWS of typ record+jwt,
        │                          or a claim missing or of the wrong type
        ├── RecordUnknownKey       unknown_key: no `kid`, or one not in the issuer's JWKS
        ├── RecordBadSignature     bad_signature: the signature does not verify
        ├── RecordWrongIssuer      wrong_issuer: `iss` is not the expected issuer
        ├── RecordWrongCategory    wrong_category: not the expected category
        ├── RecordNotYetValid      not_yet_valid: `iat` ahead of now (past the skew)
        └── RecordExpired          expired: `exp` passed
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from vault.domain.service_keys import key_by_kid
from vault.errors import InvalidRequest
from vault.oauth._jws import numeric_date, parse_jws, verify_es256

__all__ = [
    "CLOCK_SKEW",
    "MAX_RECORD_BYTES",
    "MAX_RECORD_JTI_LENGTH",
    "RECORD_TYP",
    "RecordBadSignature",
    "RecordExpired",
    "RecordMalformed",
    "RecordNotYetValid",
    "RecordRefused",
    "RecordTooLarge",
    "RecordUnknownKey",
    "RecordWrongCategory",
    "RecordWrongIssuer",
    "VerifiedRecord",
    "verify_record",
]

RECORD_TYP = "record+jwt"
MAX_RECORD_BYTES = 65536
MAX_RECORD_JTI_LENGTH = 200
#: How far an issuer's clock may run ahead of the vault's.
CLOCK_SKEW = timedelta(seconds=60)
_WHAT = "record"


class RecordRefused(InvalidRequest):
    """A signed record the vault will not take; `reason` says which rule it broke."""

    reason: ClassVar[str] = "invalid_record"


class RecordTooLarge(RecordRefused):
    reason = "too_large"


class RecordMalformed(RecordRefused):
    reason = "malformed"


class RecordUnknownKey(RecordRefused):
    reason = "unknown_key"


class RecordBadSignature(RecordRefused):
    reason = "bad_signature"


class RecordWrongIssuer(RecordRefused):
    reason = "wrong_issuer"


class RecordWrongCategory(RecordRefused):
    reason = "wrong_category"


class RecordNotYetValid(RecordRefused):
    reason = "not_yet_valid"


class RecordExpired(RecordRefused):
    reason = "expired"


@dataclass(frozen=True, slots=True)
class VerifiedRecord:
    """A record whose signature and claims hold. `jws` is exactly what was given: it is
    what the vault stores and hands to readers, who check it themselves."""

    issuer: str
    category: str
    value: Any
    issued_at: int
    expires_at: int | None
    jti: str
    kid: str
    jws: str


def _whole_seconds(claims: Mapping[str, Any], name: str) -> int | None:
    """A NumericDate (RFC 7519 §2) that is whole seconds: the contract's `N`, one spelling."""
    try:
        seconds = numeric_date(claims, name)
    except ValueError:
        seconds = math.nan
    if seconds is None:
        return None
    value = claims[name]
    if math.isnan(seconds) or not isinstance(value, int):  # bools fail numeric_date
        raise RecordMalformed(f"the record's '{name}' must be whole seconds since the epoch")
    return value


def verify_record(compact: Any, *, expected_issuer: str, jwks: Mapping[str, Any],
                  expected_category: str | None = None, now: datetime,
                  max_bytes: int = MAX_RECORD_BYTES) -> VerifiedRecord:
    """The record `compact` holds, if `expected_issuer` signed it with a key of `jwks`
    (its stored JWK Set) and its claims hold at `now`; a RecordRefused otherwise.

    `expected_category`, when given, must be the record's category (the path's).
    """
    if not isinstance(now, datetime) or now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    if isinstance(compact, str) and len(compact.encode("utf-8")) > max_bytes:
        raise RecordTooLarge(f"the record is over {max_bytes} bytes")
    parsed = parse_jws(compact, RecordMalformed, _WHAT, max_length=max_bytes)
    if parsed.header.get("typ") != RECORD_TYP:
        raise RecordMalformed(f"the record's typ must be {RECORD_TYP}")
    kid = parsed.header.get("kid")
    jwk = key_by_kid(jwks, kid) if isinstance(kid, str) and kid else None
    if jwk is None or not isinstance(kid, str):
        raise RecordUnknownKey("the record's kid is not a key of the issuer's JWKS")
    verify_es256(parsed, jwk, RecordBadSignature, _WHAT)

    claims = parsed.claims
    iss = claims.get("iss")
    if not isinstance(iss, str) or not iss:
        raise RecordMalformed("the record has no 'iss'")
    if iss != expected_issuer:
        raise RecordWrongIssuer("the record was issued by another service than the caller")
    category = claims.get("category")
    if not isinstance(category, str) or not category:
        raise RecordMalformed("the record has no 'category'")
    if expected_category is not None and category != expected_category:
        raise RecordWrongCategory("the record is of another category than the one written")
    value = claims.get("value")
    if value is None:  # absent or null: the schema, not this format, says what a value is
        raise RecordMalformed("the record has no 'value'")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_RECORD_JTI_LENGTH:
        raise RecordMalformed(f"the record needs a 'jti' of 1 to {MAX_RECORD_JTI_LENGTH} "
                              "characters")
    iat, exp = _whole_seconds(claims, "iat"), _whole_seconds(claims, "exp")
    if iat is None:
        raise RecordMalformed("the record has no 'iat'")
    t = now.astimezone(UTC).timestamp()
    if iat > t + CLOCK_SKEW.total_seconds():
        raise RecordNotYetValid("the record's 'iat' is in the future")
    if exp is not None and exp <= t:
        raise RecordExpired("the record has expired")
    return VerifiedRecord(issuer=iss, category=category, value=value, issued_at=iat,
                          expires_at=exp, jti=jti, kid=kid, jws=compact)
