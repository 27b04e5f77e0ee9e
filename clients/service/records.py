"""Checking a record an issuer signed (ARCHITECTURE §8), with nothing but its JWKS.

A record is a compact JWS, ES256, header `{"alg":"ES256","typ":"record+jwt","kid"}`,
payload `{"iss", "category", "value", "iat", "jti"}` and an optional `exp`; `value` is any
JSON value but null (what the category's schema takes: an object, a string such as a
date of birth, an array). The vault
keeps it exactly as written and hands it to readers in `provenance`; a reader checks it
with the issuer's public JWKS (`GET /services/{issuer}/jwks`), so it need not trust the
vault for where a value came from. This module knows the vault only through that format:
it is written apart from the vault's own check, and imports nothing of it.

`verify_record` refuses with `RecordInvalid`, whose `code` says why:
`too_large`, `malformed`, `unknown_key`, `bad_signature`, `wrong_issuer`,
`wrong_category`, `not_yet_valid`, `expired`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from clients.service.errors import RecordInvalid
from clients.service.jws import JwsRefused, verify_es256
from clients.service.keys import RECORD_TYP

__all__ = ["CLOCK_SKEW", "MAX_RECORD_BYTES", "SignedRecord", "verify_record"]

#: The vault refuses larger records (ARCHITECTURE §8); so does this check, before parsing.
MAX_RECORD_BYTES = 65536
#: Seconds an issuer's clock may run ahead of ours before its `iat` is refused.
CLOCK_SKEW = 60
_MAX_JTI = 200


@dataclass(frozen=True, slots=True)
class SignedRecord:
    """A record whose signature and claims checked out; `jws` is it exactly as given."""

    issuer: str
    category: str
    value: Any
    issued_at: int
    expires_at: int | None
    jti: str
    kid: str
    jws: str


def _refuse(code: str, why: str) -> RecordInvalid:
    return RecordInvalid(f"the record is refused: {why}", code=code)


def _whole_seconds(claims: Mapping[str, Any], name: str) -> int | None:
    value = claims.get(name)
    if value is None and name not in claims:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) >= 2**53:
        raise _refuse("malformed", f"its '{name}' is not whole seconds since the epoch")
    return value


def verify_record(compact: str, jwks: Mapping[str, Any], *, issuer: str | None = None,
                  category: str | None = None, now: float | None = None,
                  max_bytes: int = MAX_RECORD_BYTES) -> SignedRecord:
    """The record `compact` holds, if a key of `jwks` (the issuer's JWK Set) signed it
    and its claims hold; RecordInvalid (with `code`) otherwise.

    `issuer` and `category`, when given, must be the record's `iss` and `category`;
    `now` (seconds since the epoch; default the clock) decides `iat` and `exp`.
    """
    if not isinstance(compact, str) or not compact:
        raise _refuse("malformed", "it is not a compact JWS")
    if len(compact.encode("utf-8")) > max_bytes:
        raise _refuse("too_large", f"it is over {max_bytes} bytes")
    try:
        claims, kid = verify_es256(compact, jwks, typ=RECORD_TYP)
    except JwsRefused as exc:
        raise _refuse(exc.code, exc.why) from None
    iss, cat, value, jti = (claims.get(n) for n in ("iss", "category", "value", "jti"))
    if not isinstance(iss, str) or not iss:
        raise _refuse("malformed", "it has no 'iss'")
    if issuer is not None and iss != issuer:
        raise _refuse("wrong_issuer", "another service issued it")
    if not isinstance(cat, str) or not cat:
        raise _refuse("malformed", "it has no 'category'")
    if category is not None and cat != category:
        raise _refuse("wrong_category", "it is a record of another category")
    if value is None:  # absent or null; the category's schema says what a value may be
        raise _refuse("malformed", "it has no 'value'")
    if not isinstance(jti, str) or not 0 < len(jti) <= _MAX_JTI:
        raise _refuse("malformed", f"its 'jti' is not text of 1 to {_MAX_JTI} characters")
    iat, exp = _whole_seconds(claims, "iat"), _whole_seconds(claims, "exp")
    if iat is None:
        raise _refuse("malformed", "it has no 'iat'")
    t = time.time() if now is None else now
    if not math.isfinite(t):
        raise ValueError("now must be a finite number of seconds")
    if iat > t + CLOCK_SKEW:
        raise _refuse("not_yet_valid", "it was issued in the future")
    if exp is not None and exp <= t:
        raise _refuse("expired", "it has expired")
    return SignedRecord(issuer=iss, category=cat, value=value, issued_at=iat,
                        expires_at=exp, jti=jti, kid=kid, jws=compact)
