"""A service's public keys: the JWK Set (RFC 7517 §5) the operator registers.

A service signs its client assertions (RFC 7523) and, as an issuer, its records
(ARCHITECTURE §8) with a key of this set; readers fetch it at `/services/{id}/jwks`.
Holding a set, not one key, is what lets a service rotate: register the old and the
new key, move to the new one, then drop the old.

Rules: a JSON object `{"keys": [...]}` of 1 to `MAX_SERVICE_KEYS` EC P-256 public keys
(`check_p256_public_jwk`: no private member, ES256 and `use: sig` when said), each with
a `kid` that no other key of the set has. A key sent without a `kid` is given its RFC
7638 thumbprint, which is what the SDK signs with for such a key (`ServiceKey.key_id`),
so a record or assertion can always name its key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vault.crypto.token_key import jwk_thumbprint
from vault.domain.errors import InvalidService
from vault.domain.services import check_p256_public_jwk

__all__ = ["MAX_KID_LENGTH", "MAX_SERVICE_KEYS", "check_service_jwks", "key_by_kid"]

#: Enough for a rotation with room to spare; a verifier may try each key of a set
#: (an assertion without `kid`), so the set stays small.
MAX_SERVICE_KEYS = 10
MAX_KID_LENGTH = 200
#: The members a registered key may keep; anything else (x5c, key_ops, ...) is refused
#: rather than stored and served unread.
_MEMBERS = frozenset({"kty", "crv", "x", "y", "kid", "use", "alg"})


def check_service_jwks(jwks: Any) -> dict[str, list[dict[str, str]]]:
    """The JWK Set as it is stored and served, or InvalidService saying what is wrong."""
    if not isinstance(jwks, Mapping) or set(jwks) != {"keys"}:
        raise InvalidService('the service keys must be a JWK Set: {"keys": [...]} and '
                             "nothing else")
    keys = jwks["keys"]
    if not isinstance(keys, list) or not 1 <= len(keys) <= MAX_SERVICE_KEYS:
        raise InvalidService(f"the JWK Set must hold 1 to {MAX_SERVICE_KEYS} keys")
    stored: list[dict[str, str]] = []
    for number, jwk in enumerate(keys, 1):
        try:
            check_p256_public_jwk(jwk)
        except InvalidService as exc:
            raise InvalidService(f"key {number} of the JWK Set: {exc}") from None
        extra = set(jwk) - _MEMBERS
        if extra:
            raise InvalidService(f"key {number} of the JWK Set has members the vault does "
                                 f"not use: {', '.join(sorted(extra))[:100]}")
        kid = jwk.get("kid", jwk_thumbprint(jwk))
        if not isinstance(kid, str) or not 0 < len(kid) <= MAX_KID_LENGTH or \
                not kid.isprintable():
            raise InvalidService(f"key {number}'s kid must be printable text of 1 to "
                                 f"{MAX_KID_LENGTH} characters")
        if any(k["kid"] == kid for k in stored):
            raise InvalidService(f"key {number}'s kid is already the kid of another key")
        stored.append({**{m: jwk[m] for m in jwk}, "kid": kid})
    return {"keys": stored}


def key_by_kid(jwks: Mapping[str, Any], kid: str) -> dict[str, Any] | None:
    """The key of a stored set whose `kid` is `kid`, or None."""
    for jwk in jwks.get("keys", ()):
        if jwk.get("kid") == kid:
            return dict(jwk)
    return None
