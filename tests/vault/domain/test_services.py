"""Service registrations: a good one passes; each bad field is refused, saying why."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from vault.domain.errors import InvalidService
from vault.domain.services import validate_registration


def b64url(n: int, size: int = 32) -> str:
    return base64.urlsafe_b64encode(n.to_bytes(size, "big")).rstrip(b"=").decode()


def ec_jwk(curve: ec.EllipticCurve = ec.SECP256R1(), size: int = 32) -> dict[str, Any]:
    """A public JWK made by the `cryptography` package (an independent implementation)."""
    numbers = ec.generate_private_key(curve).public_key().public_numbers()
    crv = {32: "P-256", 48: "P-384"}[size]
    return {"kty": "EC", "crv": crv, "x": b64url(numbers.x, size), "y": b64url(numbers.y, size)}


def private_ec_jwk() -> dict[str, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    pub = key.public_key().public_numbers()
    return {"kty": "EC", "crv": "P-256", "x": b64url(pub.x), "y": b64url(pub.y),
            "d": b64url(key.private_numbers().private_value)}


def rsa_jwk() -> dict[str, Any]:
    pub = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    n = pub.public_numbers()
    return {"kty": "RSA", "n": b64url(n.n, 256), "e": b64url(n.e, 3)}


GOOD_JWK = ec_jwk()


def good(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "name": "Leeds City Council Blue Badge team",
        "description": "Checks Blue Badge applications.\nRenews badges.",
        "purposes": ["eligibility_assessment", "service_provision"],
        "categories": ["address.home", "transport.blue_badge"],
        "derived": ["age_over_65", "resident_in:Leeds", "receives:attendance_allowance"],
        "max_days": 90,
        "jwk": {**GOOD_JWK, "alg": "ES256", "use": "sig", "kid": "k1"},
        "redirect_uris": ["https://bluebadge.leeds.example/callback",
                          "http://localhost:8080/callback", "http://127.0.0.1/cb",
                          "http://[::1]:9000/cb"],
        "webhook_url": "https://bluebadge.leeds.example/hooks/vault",
        "privacy_notice_url": "https://leeds.example/privacy/blue-badge",
        "dpia_url": "https://leeds.example/dpia/blue-badge.pdf",
    }
    fields.update(changes)
    return fields


def accepted(fields: dict[str, Any]) -> bool:
    try:
        validate_registration(**fields)
    except InvalidService:
        return False
    return True


def test_a_good_registration_passes() -> None:
    assert accepted(good())
    assert accepted(good(webhook_url=None, dpia_url=None, derived=[]))
    assert accepted(good(categories=[], max_days=1))
    assert accepted(good(max_days=3650))
    # An issuer (ARCHITECTURE §8): it may issue without reading anything.
    assert accepted(good(issues=["benefits.attendance_allowance", "identity.name"]))
    assert accepted(good(categories=[], derived=[], issues=["health.observations"]))


def test_keys_from_an_independent_library_pass() -> None:
    # 50 fresh keys: some have a leading zero byte in x or y, still 32 bytes long.
    assert all(accepted(good(jwk=ec_jwk())) for _ in range(50))


def wrong_point() -> dict[str, Any]:
    jwk = dict(GOOD_JWK)
    y = int.from_bytes(base64.urlsafe_b64decode(jwk["y"] + "=="), "big")
    jwk["y"] = b64url(y ^ 1)
    return jwk


BAD: list[tuple[dict[str, Any], str]] = [
    (good(name=""), "name must be non-empty"),
    (good(name="   "), "name must be non-empty"),
    (good(name="x" * 101), "name must be at most 100"),
    (good(name="Blue\x00Badge"), "name must not contain control"),
    (good(name=None), "name must be non-empty"),
    (good(description=""), "description must be non-empty"),
    (good(purposes=[]), "at least one purpose"),
    (good(purposes=["marketing"]), "unknown purpose 'marketing'"),
    (good(purposes="service_provision"), "purposes must be a list"),
    (good(categories=["identity.shoe_size"]), "unknown category 'identity.shoe_size'"),
    (good(categories=[1]), "every entry in categories must be text"),
    (good(derived=["age_over_21"]), "unknown derived answer"),
    (good(derived=["receives:pension"]), "unknown derived answer"),
    (good(categories=[], derived=[]), "at least one category or derived answer"),
    (good(categories=[], derived=[], issues=[]), "or a category to issue"),
    (good(issues=["contact.email"]), "does not let any service issue the category "
     "'contact.email'; the categories a service may issue are benefits.attendance_allowance, "
     "benefits.universal_credit, health.observations, household.universal_credit, "
     "identity.date_of_birth, identity.name"),
    (good(issues=["identity.shoe_size"]), "unknown category 'identity.shoe_size'; the "
     "categories a service may issue are benefits.attendance_allowance"),
    (good(issues="identity.name"), "issues must be a list"),
    (good(issues=[3]), "every entry in issues must be text"),
    (good(max_days=0), "max_days must be a whole number from 1 to 3650"),
    (good(max_days=3651), "max_days must be a whole number from 1 to 3650"),
    (good(max_days=30.0), "max_days must be a whole number"),
    (good(max_days=True), "max_days must be a whole number"),
    (good(jwk=private_ec_jwk()), "private key material"),
    (good(jwk={**GOOD_JWK, "d": "AAAA"}), "remove 'd'"),
    (good(jwk=rsa_jwk()), "EC P-256 public key (kty 'EC'), not kty 'RSA'"),
    (good(jwk={"kty": "oct", "k": "c2VjcmV0"}), "private key material"),
    (good(jwk=ec_jwk(ec.SECP384R1(), 48)), "curve P-256, not 'P-384'"),
    (good(jwk={**GOOD_JWK, "crv": "secp256k1"}), "curve P-256"),
    (good(jwk={k: v for k, v in GOOD_JWK.items() if k != "y"}), "missing its 'y'"),
    (good(jwk={**GOOD_JWK, "x": GOOD_JWK["x"] + "="}), "base64url text without padding"),
    (good(jwk={**GOOD_JWK, "x": GOOD_JWK["x"][:-3]}), "exactly 32 bytes"),
    (good(jwk={**GOOD_JWK, "x": GOOD_JWK["x"][:-2]}), "not valid base64url"),
    (good(jwk={**GOOD_JWK, "x": b64url(5, 33)}), "exactly 32 bytes"),
    (good(jwk={**GOOD_JWK, "x": 12345}), "base64url text"),
    (good(jwk=wrong_point()), "not a point on curve P-256"),
    (good(jwk={**GOOD_JWK, "alg": "RS256"}), "must be ES256"),
    (good(jwk={**GOOD_JWK, "use": "enc"}), "must be 'sig'"),
    (good(jwk="not a jwk"), "must be a JWK object"),
    (good(redirect_uris=[]), "at least one redirect URI"),
    (good(redirect_uris="https://a.example/cb"), "redirect_uris must be a list"),
    (good(redirect_uris=["http://bluebadge.leeds.example/callback"]),
     "must use https (plain http is allowed only for localhost)"),
    (good(redirect_uris=["http://localhost.evil.example/cb"]), "must use https"),
    (good(redirect_uris=["/callback"]), "absolute http or https URL"),
    (good(redirect_uris=["javascript:alert(1)"]), "absolute http or https URL"),
    (good(redirect_uris=["ftp://a.example/cb"]), "absolute http or https URL"),
    (good(redirect_uris=["https://a.example/cb#frag"]), "must not contain a fragment"),
    (good(redirect_uris=["https://user:pw@a.example/cb"]), "user name or password"),
    (good(redirect_uris=["https://a.example/c b"]), "spaces or control characters"),
    (good(redirect_uris=["https://a.example:99999/cb"]), "not a valid URL"),
    (good(webhook_url="hooks.example/x"), "webhook_url must be an absolute"),
    (good(privacy_notice_url=""), "privacy_notice_url must be an absolute URL"),
    (good(privacy_notice_url="mailto:dpo@leeds.example"), "privacy_notice_url must be"),
    (good(dpia_url="https://"), "dpia_url must be an absolute"),
]


@pytest.mark.parametrize(("fields", "words"), BAD)
def test_each_bad_field_is_refused_with_a_clear_message(fields: dict[str, Any],
                                                        words: str) -> None:
    with pytest.raises(InvalidService) as info:
        validate_registration(**fields)
    assert words in str(info.value)
