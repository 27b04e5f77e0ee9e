"""The service key: loading it from PEM, JWK or a file, the public JWK the operator
registers, and ES256 JWTs that another library (PyJWT) verifies with that public JWK;
PKCE pairs that match RFC 7636's S256 for any verifier."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import string
from pathlib import Path

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from clients.service import ServiceKey
from clients.service.keys import b64url_decode
from clients.service.pkce import code_challenge, new_state, new_verifier, same_state

CLAIMS = {"iss": "svc_1", "sub": "svc_1", "aud": "https://vault.example.gov",
          "jti": "j", "iat": 1, "exp": 61}


def verify(token: str, jwk: dict[str, str]) -> dict[str, object]:
    public = pyjwt.PyJWK(jwk, algorithm="ES256").key
    return pyjwt.decode(token, public, algorithms=["ES256"],  # type: ignore[no-any-return]
                        audience=CLAIMS["aud"], options={"verify_exp": False})


def test_a_generated_key_signs_what_its_public_jwk_verifies() -> None:
    key = ServiceKey.generate()
    jwk = key.public_jwk()
    assert set(jwk) == {"kty", "crv", "x", "y"} and (jwk["kty"], jwk["crv"]) == ("EC", "P-256")
    token = key.sign_jwt(CLAIMS)
    assert verify(token, jwk) == CLAIMS
    assert pyjwt.get_unverified_header(token) == {"alg": "ES256", "typ": "JWT"}
    assert len(base64.urlsafe_b64decode(token.split(".")[2] + "==")) == 64  # R || S, not DER
    with pytest.raises(pyjwt.InvalidSignatureError):
        verify(token, ServiceKey.generate().public_jwk())


def test_pem_round_trips_plain_encrypted_and_sec1() -> None:
    key = ServiceKey.generate()
    for again in (ServiceKey.from_pem(key.private_pem()),
                  ServiceKey.from_pem(key.private_pem().decode()),
                  ServiceKey.from_pem(key.private_pem(password=b"pw"), password=b"pw")):
        assert again.public_jwk() == key.public_jwk()
    raw = serialization.load_pem_private_key(key.private_pem(), None)
    sec1 = raw.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())
    assert b"BEGIN EC PRIVATE KEY" in sec1
    assert ServiceKey.from_pem(sec1).public_jwk() == key.public_jwk()
    assert b"ENCRYPTED" in key.private_pem(password=b"pw")


def private_jwk(key: ServiceKey, **extra: str) -> dict[str, str]:
    raw = serialization.load_pem_private_key(key.private_pem(), None)
    assert isinstance(raw, ec.EllipticCurvePrivateKey)
    d = raw.private_numbers().private_value.to_bytes(32, "big")
    return {**key.public_jwk(), "d": base64.urlsafe_b64encode(d).rstrip(b"=").decode(),
            **extra}


def test_a_private_jwk_loads_with_its_kid_and_the_kid_is_sent() -> None:
    key = ServiceKey.generate()
    loaded = ServiceKey.from_jwk(private_jwk(key, kid="k-2026"))
    assert loaded.kid == "k-2026"
    assert loaded.public_jwk() == {**key.public_jwk(), "kid": "k-2026"}
    token = loaded.sign_jwt(CLAIMS)
    assert pyjwt.get_unverified_header(token)["kid"] == "k-2026"
    assert verify(token, key.public_jwk()) == CLAIMS
    assert "d" not in loaded.public_jwk() and private_jwk(key)["d"] not in repr(loaded)


def test_a_file_may_hold_a_pem_or_a_jwk(tmp_path: Path) -> None:
    key = ServiceKey.generate()
    (tmp_path / "k.pem").write_bytes(key.private_pem())
    (tmp_path / "k.json").write_text(json.dumps(private_jwk(key)))
    for name in ("k.pem", "k.json"):
        assert ServiceKey.from_file(tmp_path / name).public_jwk() == key.public_jwk()


@pytest.mark.parametrize("jwk", [
    {"kty": "EC", "crv": "P-384", "x": "a", "y": "b", "d": "c"},
    {"kty": "RSA", "n": "a", "e": "AQAB", "d": "c"},
    "private_jwk_without_d",
    "d_of_another_key",
    "x_not_base64url",
    "x_too_short",
])
def test_unusable_jwks_are_refused(jwk: object) -> None:
    key, other = ServiceKey.generate(), ServiceKey.generate()
    if jwk == "private_jwk_without_d":
        jwk = key.public_jwk()
    elif jwk == "d_of_another_key":
        jwk = {**key.public_jwk(), "d": private_jwk(other)["d"]}
    elif jwk == "x_not_base64url":
        jwk = {**private_jwk(key), "x": "not base64!"}
    elif jwk == "x_too_short":
        jwk = {**private_jwk(key), "x": "AAAA"}
    with pytest.raises(ValueError):
        ServiceKey.from_jwk(jwk)  # type: ignore[arg-type]


def test_keys_that_are_not_p256_are_refused() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1())
    pem = p384.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    with pytest.raises(ValueError, match="P-256"):
        ServiceKey.from_pem(pem)
    with pytest.raises(ValueError, match="P-256"):
        ServiceKey(p384)
    with pytest.raises(ValueError):
        ServiceKey.from_pem(b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")


def test_base64url_decoding_is_strict() -> None:
    assert b64url_decode("AQID") == b"\x01\x02\x03"
    for bad in ("AQID=", "AQ+D", "AR", "A"):
        with pytest.raises(ValueError):
            b64url_decode(bad)


# -- PKCE ------------------------------------------------------------------------------------

VERIFIER_ALPHABET = string.ascii_letters + string.digits + "-._~"


def test_the_rfc7636_appendix_b_example() -> None:
    assert code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == \
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=VERIFIER_ALPHABET, min_size=43, max_size=128))
def test_any_valid_verifier_pairs_with_its_s256_challenge(verifier: str) -> None:
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    assert code_challenge(verifier) == expected.rstrip(b"=").decode()
    assert len(code_challenge(verifier)) == 43


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=0, max_size=140).filter(
    lambda v: not (43 <= len(v) <= 128 and all(c in VERIFIER_ALPHABET for c in v))))
def test_anything_else_is_not_a_verifier(verifier: str) -> None:
    with pytest.raises(ValueError):
        code_challenge(verifier)


def test_new_verifiers_and_states_are_valid_and_unique() -> None:
    verifiers = {new_verifier() for _ in range(50)}
    assert len(verifiers) == 50
    assert all(len(code_challenge(v)) == 43 for v in verifiers)
    states = {new_state() for _ in range(50)}
    assert len(states) == 50
    state = new_state()
    assert same_state(state, state) and not same_state(state + "x", state)
    assert not same_state(None, state) and not same_state("", state)


def test_a_new_key_is_saved_for_its_owner_only_and_never_over_another(tmp_path: Path) -> None:
    key = ServiceKey.generate()
    path = tmp_path / "service-key.pem"
    old = os.umask(0)  # the key file must not follow a permissive umask
    try:
        assert key.save(path) == path
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert ServiceKey.from_file(path).public_jwk() == key.public_jwk()
    with pytest.raises(FileExistsError):
        ServiceKey.generate().save(path)
    assert ServiceKey.from_file(path).public_jwk() == key.public_jwk()  # still the first
    locked = key.save(tmp_path / "locked.pem", password=b"correct horse")
    assert b"ENCRYPTED" in locked.read_bytes()
    assert ServiceKey.from_file(locked, password=b"correct horse").public_jwk() \
        == key.public_jwk()
