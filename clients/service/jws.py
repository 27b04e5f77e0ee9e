"""Checking a compact ES256 JWS against a JWK Set: the part an issuer's record
(`records.verify_record`) and the vault's request to a source (`sources`) share.

Written apart from the vault's own checks (it imports nothing of the vault). The header
must be exactly ES256 with the expected `typ` and a `kid` naming one P-256 key of the
set; headers that fetch or embed keys, or demand extensions, are refused; the payload is
a JSON object with no duplicate members. What the claims must hold is the caller's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from clients.service.keys import b64url_decode

__all__ = ["JwsRefused", "verify_es256"]

#: Headers that fetch or embed keys, or demand extensions (RFC 7515 §4.1; RFC 7797): a
#: signer names its key by `kid` in its registered JWKS, and nothing else.
_REFUSED_HEADERS = frozenset({"crit", "jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256", "b64"})
_HALF = 32  # bytes in each of R and S (RFC 7518 §3.4), and in each P-256 coordinate


class JwsRefused(Exception):
    """Why a JWS was refused: `code` (malformed, unknown_key, bad_signature) and `why`
    in words. Callers turn it into their own error."""

    def __init__(self, code: str, why: str) -> None:
        super().__init__(why)
        self.code, self.why = code, why


def verify_es256(compact: str, jwks: Mapping[str, Any], *, typ: str
                 ) -> tuple[dict[str, Any], str]:
    """The payload and `kid` of `compact`, if a key of `jwks` signed it as ES256 with
    header `typ`; JwsRefused otherwise. Size limits are the caller's, checked first."""
    parts = compact.split(".")
    if len(parts) != 3 or not all(parts):
        raise JwsRefused("malformed", "it is not a compact JWS of three parts")
    header, claims = _object(parts[0], "header"), _object(parts[1], "payload")
    # RFC 8725 §3.1: the algorithm is ours to choose, never the token's.
    if header.get("alg") != "ES256":
        raise JwsRefused("malformed", "it is not signed with ES256")
    if header.get("typ") != typ:
        raise JwsRefused("malformed", f"its typ is not {typ}")
    if _REFUSED_HEADERS & header.keys():
        raise JwsRefused("malformed", "its header names keys or extensions")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise JwsRefused("unknown_key", "its header has no kid")
    key = _public_key(jwks, kid)
    try:
        signature = b64url_decode(parts[2])
    except ValueError:
        raise JwsRefused("malformed", "its signature is not canonical base64url") from None
    if len(signature) != 2 * _HALF:
        raise JwsRefused("bad_signature", "its signature is not an ES256 signature")
    der = encode_dss_signature(int.from_bytes(signature[:_HALF], "big"),
                               int.from_bytes(signature[_HALF:], "big"))
    try:
        key.verify(der, f"{parts[0]}.{parts[1]}".encode("ascii"), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise JwsRefused("bad_signature", "its signature does not verify") from None
    return claims, kid


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for name, value in pairs:
        if name in obj:  # two readers could otherwise see two different payloads
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
        raise JwsRefused("malformed", f"its {what} is not canonical base64url JSON") from None
    if not isinstance(doc, dict):
        raise JwsRefused("malformed", f"its {what} is not a JSON object")
    return doc


def _public_key(jwks: Mapping[str, Any], kid: str) -> ec.EllipticCurvePublicKey:
    keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
    if not isinstance(keys, list):
        raise TypeError("jwks must be a JWK Set: {'keys': [...]}")
    found = [k for k in keys if isinstance(k, Mapping) and k.get("kid") == kid]
    if len(found) != 1:
        raise JwsRefused("unknown_key", "its kid is not one key of the signer's JWKS")
    jwk = found[0]
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256" or jwk.get("alg", "ES256") != "ES256":
        raise JwsRefused("unknown_key", "the signer's key is not an ES256 (P-256) key")
    try:
        x, y = (b64url_decode(jwk.get(c)) for c in ("x", "y"))  # type: ignore[arg-type]
        if len(x) != _HALF or len(y) != _HALF:
            raise ValueError("not a P-256 coordinate")
        numbers = ec.EllipticCurvePublicNumbers(int.from_bytes(x, "big"),
                                                int.from_bytes(y, "big"), ec.SECP256R1())
        return numbers.public_key()  # ValueError off the curve
    except (ValueError, TypeError):
        raise JwsRefused("unknown_key", "the signer's key is not a P-256 point") from None
