"""Compact JWS (RFC 7515) read strictly, then ES256 verified by python-jose, pinned.

Everything about the token is checked before jose sees it: exactly three segments of
canonical base64url (so no two spellings of one token exist, and a flipped padding bit
is not silently ignored), JSON objects without duplicate members, and a header whose
`alg` is exactly ES256 (RFC 8725 §3.1: never let the token choose the algorithm). Then
jose verifies the signature with `algorithms=["ES256"]` and an EC key object, so neither
"none" nor an HMAC keyed with the public key can ever be tried.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from jose import jws
from jose.backends import ECKey
from jose.exceptions import JOSEError

from vault.domain.errors import InvalidService
from vault.domain.services import check_p256_public_jwk
from vault.oauth.errors import OAuthError

__all__ = ["ALG", "MAX_JWS_LENGTH", "Jws", "numeric_date", "parse_jws", "verify_es256"]

ALG = "ES256"
#: Far beyond any token we issue or accept (a few hundred bytes of claims).
MAX_JWS_LENGTH = 8192
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
#: Header members that point at keys or extensions we never use (RFC 7515 §4.1.2-6, 11;
#: RFC 7797 b64): a token carrying one is refused rather than half-understood.
_REFUSED_HEADERS = frozenset({"crit", "jku", "jwk", "x5u", "x5c", "b64"})


@dataclass(frozen=True, slots=True)
class Jws:
    """A compact JWS whose form was checked; its signature is not checked yet."""

    token: str
    header: dict[str, Any]
    claims: dict[str, Any]


def _b64url_decode(segment: str) -> bytes | None:
    """Canonical unpadded base64url only: the encoding of the result must give `segment`."""
    if not _B64URL.fullmatch(segment) or len(segment) % 4 == 1:
        return None
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        return None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != segment:
        return None
    return raw


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # dict() in C, and a duplicate shows as a shorter dict: called for every object of a
    # payload (a series batch has a thousand), a loop in Python was a tenth of its CPU.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate member")
    return obj


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates,
                         parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


#: What `parse_jws` and `verify_es256` raise: an OAuthError class, or any callable that
#: makes an exception from the sentence saying what is wrong (signed records, say).
ErrorFactory = Callable[[str], Exception]


def parse_jws(token: Any, error: ErrorFactory | type[OAuthError], what: str, *,
              max_length: int = MAX_JWS_LENGTH) -> Jws:
    """The header and claims of `token`, or `error` saying which rule of form it breaks.

    The header's `alg` must be exactly ES256; `typ` is left to the caller.
    """
    if not isinstance(token, str) or not token or len(token) > max_length:
        raise error(f"the {what} is missing or too long")
    parts = token.split(".")
    if len(parts) != 3:
        raise error(f"the {what} is not a compact JWS (three base64url parts)")
    if not parts[2]:
        raise error(f"the {what} is not signed")
    raw = [_b64url_decode(p) for p in parts]
    if any(r is None or not r for r in raw):
        raise error(f"the {what} is not canonical base64url")
    header, claims = _json_object(raw[0] or b""), _json_object(raw[1] or b"")
    if header is None or claims is None:
        raise error(f"the {what}'s header and payload must be JSON objects")
    if header.get("alg") != ALG:
        raise error(f"the {what} must be signed with {ALG}")
    if _REFUSED_HEADERS & header.keys():
        raise error(f"the {what}'s header names keys or extensions this server does not use")
    return Jws(token, header, claims)


@lru_cache(maxsize=256)
def _verifier(x: str, y: str) -> ECKey:
    def coordinate(value: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(value + "="), "big")

    public = ec.EllipticCurvePublicNumbers(coordinate(x), coordinate(y), ec.SECP256R1())
    return ECKey(public.public_key(), ALG)


def verify_es256(parsed: Jws, jwk: Mapping[str, Any], error: ErrorFactory | type[OAuthError],
                 what: str) -> None:
    """`error` unless `parsed` carries a valid ES256 signature by the P-256 public key `jwk`."""
    try:
        check_p256_public_jwk(jwk)  # kty EC, crv P-256, canonical x and y on the curve
    except InvalidService:
        raise error(f"the key for this {what} is not a P-256 public key") from None
    key = _verifier(jwk["x"], jwk["y"])
    try:
        # The header was checked already; jose checks it again against the pinned list.
        payload = jws.verify(parsed.token, key, algorithms=[ALG])
    except JOSEError:
        raise error(f"the {what}'s signature does not verify") from None
    # The very bytes whose claims were parsed; never differs. Compared as bytes: parsing
    # them again cost as much as the first parse (a series batch's is 140 KiB).
    segment = parsed.token.split(".")[1]  # canonical already: parse_jws checked it
    if payload != base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)):
        raise error(f"the {what}'s signature does not verify")


def numeric_date(claims: Mapping[str, Any], name: str) -> float | None:
    """A NumericDate claim (RFC 7519 §2) as seconds, None when absent; ValueError if not one."""
    if name not in claims:
        return None
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(name)
    if isinstance(value, int) and abs(value) >= 2**53:  # float() would round or overflow
        raise ValueError(name)
    if not math.isfinite(value):
        raise ValueError(name)
    return float(value)
