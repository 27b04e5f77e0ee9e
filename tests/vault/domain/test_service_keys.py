"""A service's registered JWK Set: public EC P-256 keys only, each with a unique kid (its
RFC 7638 thumbprint when it came without one), at most ten."""

from __future__ import annotations

from typing import Any

import pytest

from clients.service.keys import ServiceKey
from vault.domain.errors import InvalidService
from vault.domain.service_keys import MAX_SERVICE_KEYS, check_service_jwks, key_by_kid

A, B = ServiceKey.generate(kid="a"), ServiceKey.generate()


def refused(jwks: Any) -> str:
    with pytest.raises(InvalidService) as caught:
        check_service_jwks(jwks)
    return str(caught.value)


def test_keys_are_kept_with_their_kid_or_given_their_thumbprint() -> None:
    stored = check_service_jwks({"keys": [A.public_jwk(), B.public_jwk()]})
    assert stored == {"keys": [A.public_jwk(), {**B.public_jwk(), "kid": B.thumbprint()}]}
    assert check_service_jwks(B.public_jwks())["keys"][0]["kid"] == B.key_id
    assert key_by_kid(stored, B.thumbprint()) == stored["keys"][1]
    assert key_by_kid(stored, "nope") is None


@pytest.mark.parametrize(("jwks", "says"), [
    (A.public_jwk(), "JWK Set"),
    ({"keys": [A.public_jwk()], "extra": 1}, "JWK Set"),
    ({"keys": []}, "1 to 10 keys"),
    ({"keys": "x"}, "1 to 10 keys"),
    ({"keys": [ServiceKey.generate(kid=str(i)).public_jwk()
               for i in range(MAX_SERVICE_KEYS + 1)]}, "1 to 10 keys"),
    ({"keys": [{**A.public_jwk(), "d": "AAAA"}]}, "private key material"),
    ({"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]}, "kty 'EC'"),
    ({"keys": [{**A.public_jwk(), "crv": "P-384"}]}, "P-256"),
    ({"keys": [A.public_jwk(), {**B.public_jwk(), "alg": "HS256"}]}, "key 2"),
    ({"keys": [{**A.public_jwk(), "x5c": ["MII"]}]}, "x5c"),
    ({"keys": [A.public_jwk(), {**B.public_jwk(), "kid": "a"}]}, "already"),
    ({"keys": [A.public_jwk(), A.public_jwk()]}, "already"),
    ({"keys": [{**A.public_jwk(), "kid": ""}]}, "kid"),
    ({"keys": [{**A.public_jwk(), "kid": 5}]}, "kid"),
    ({"keys": [{**A.public_jwk(), "kid": "k" * 201}]}, "kid"),
    ({"keys": [{**A.public_jwk(), "kid": "a\nb"}]}, "kid"),
])
def test_refused(jwks: Any, says: str) -> None:
    assert says in refused(jwks)
