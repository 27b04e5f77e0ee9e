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

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from clients.service.errors import RecordInvalid
from clients.service.keys import RECORD_TYP, b64url_decode

__all__ = ["CLOCK_SKEW", "MAX_RECORD_BYTES", "SignedRecord", "verify_record"]

#: The vault refuses larger records (ARCHITECTURE §8); so does this check, before parsing.
MAX_RECORD_BYTES = 65536
#: Seconds an issuer's clock may run ahead of ours before its `iat` is refused.
CLOCK_SKEW = 60
_MAX_JTI = 200
#: Headers that fetch or embed keys, or demand extensions (RFC 7515 §4.1; RFC 7797): a
#: record names its key by `kid` in the issuer's registered JWKS, and nothing else.
_REFUSED_HEADERS = frozenset({"crit", "jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256", "b64"})
_HALF = 32  # bytes in each of R and S (RFC 7518 §3.4)


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


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for name, value in pairs:
        if name in obj:  # two readers could otherwise see two different records
            raise ValueError("duplicate member")
        obj[name] = value
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _object(segment: str, what: str) -> dict[str, Any]:
    try:
        raw = b64url_decode(segment)
        doc = json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_members,
                         parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise _refuse("malformed", f"its {what} is not canonical base64url JSON") from None
    if not isinstance(doc, dict):
        raise _refuse("malformed", f"its {what} is not a JSON object")
    return doc


def _public_key(jwks: Mapping[str, Any], kid: str) -> ec.EllipticCurvePublicKey:
    keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
    if not isinstance(keys, list):
        raise TypeError("jwks must be a JWK Set: {'keys': [...]}")
    found = [k for k in keys if isinstance(k, Mapping) and k.get("kid") == kid]
    if len(found) != 1:
        raise _refuse("unknown_key", "its kid is not one key of the issuer's JWKS")
    jwk = found[0]
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256" or jwk.get("alg", "ES256") != "ES256":
        raise _refuse("unknown_key", "the issuer's key is not an ES256 (P-256) key")
    try:
        x, y = (b64url_decode(jwk.get(c)) for c in ("x", "y"))  # type: ignore[arg-type]
        if len(x) != _HALF or len(y) != _HALF:
            raise ValueError("not a P-256 coordinate")
        numbers = ec.EllipticCurvePublicNumbers(int.from_bytes(x, "big"),
                                                int.from_bytes(y, "big"), ec.SECP256R1())
        return numbers.public_key()  # ValueError off the curve
    except (ValueError, TypeError):
        raise _refuse("unknown_key", "the issuer's key is not a P-256 point") from None


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
    parts = compact.split(".")
    if len(parts) != 3 or not all(parts):
        raise _refuse("malformed", "it is not a compact JWS of three parts")
    header, claims = _object(parts[0], "header"), _object(parts[1], "payload")
    # RFC 8725 §3.1: the algorithm is ours to choose, never the token's.
    if header.get("alg") != "ES256":
        raise _refuse("malformed", "it is not signed with ES256")
    if header.get("typ") != RECORD_TYP:
        raise _refuse("malformed", f"its typ is not {RECORD_TYP}")
    if _REFUSED_HEADERS & header.keys():
        raise _refuse("malformed", "its header names keys or extensions")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise _refuse("unknown_key", "its header has no kid")
    key = _public_key(jwks, kid)
    try:
        signature = b64url_decode(parts[2])
    except ValueError:
        raise _refuse("malformed", "its signature is not canonical base64url") from None
    if len(signature) != 2 * _HALF:
        raise _refuse("bad_signature", "its signature is not an ES256 signature")
    der = encode_dss_signature(int.from_bytes(signature[:_HALF], "big"),
                               int.from_bytes(signature[_HALF:], "big"))
    try:
        key.verify(der, f"{parts[0]}.{parts[1]}".encode("ascii"), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise _refuse("bad_signature", "its signature does not verify") from None

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
