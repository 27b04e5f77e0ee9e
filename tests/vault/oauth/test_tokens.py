"""Access tokens: what we issue (RFC 9068, ES256, <= 5 min, never past the grant), that a
second JOSE library (PyJWT) verifies them from our JWKS, and that every forgery in the
attack list is refused. Forged tokens are built by hand, byte by byte, so no library
can quietly "fix" them on the way in."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jose import jws as jose_jws

from vault.crypto.token_key import TokenKey, TokenKeys
from vault.oauth import (
    LEEWAY,
    MAX_LIFETIME,
    AccessTokenClaims,
    InvalidGrantError,
    InvalidTokenError,
    issue_access_token,
    jwks,
    verify_access_token,
)
from vault.oauth.tokens import VerifiedTokens

ISSUER = "https://vault.example"
AUDIENCE = "https://vault.example/v1"
NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
GRANT_ENDS = NOW + timedelta(days=30)
DETAILS = [{"type": "personal_data", "purpose": "benefits.eligibility",
            "categories": ["identity.name"]}]

KEY = TokenKey.generate()
KEYS = TokenKeys([KEY], source="env")
ATTACKER = ec.generate_private_key(ec.SECP256R1())


# -- helpers: build tokens by hand --------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def seg(obj: dict[str, Any]) -> str:
    return b64(json.dumps(obj, separators=(",", ":")).encode())


def es256(private: ec.EllipticCurvePrivateKey, signing_input: str) -> str:
    r, s = decode_dss_signature(private.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def hs256(secret: bytes, signing_input: str) -> str:
    return b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())


def public_jwk(private: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    n = private.public_key().public_numbers()
    return {"kty": "EC", "crv": "P-256", "x": b64(n.x.to_bytes(32, "big")),
            "y": b64(n.y.to_bytes(32, "big"))}


def header(**extra: Any) -> dict[str, Any]:
    return {"alg": "ES256", "kid": KEY.kid, "typ": "at+jwt", **extra}


def claims(**changes: Any) -> dict[str, Any]:
    iat = int(NOW.timestamp())
    base: dict[str, Any] = {
        "iss": ISSUER, "aud": AUDIENCE, "sub": "psub_abc", "client_id": "svc_a",
        "iat": iat, "exp": iat + 300, "jti": "j1", "grant_id": "grt_1",
        "authorization_details": DETAILS,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not ...}


def issue(key: TokenKey = KEY, **kw: Any) -> tuple[str, AccessTokenClaims]:
    args: dict[str, Any] = dict(issuer=ISSUER, audience=AUDIENCE, client_id="svc_a",
                                sub="psub_abc", grant_id="grt_1", authorization_details=DETAILS,
                                now=NOW, grant_expires_at=GRANT_ENDS)
    args.update(kw)
    return issue_access_token(key, **args)


def verify(token: str, **kw: Any) -> AccessTokenClaims:
    args: dict[str, Any] = dict(keys=KEYS, issuer=ISSUER, audience=AUDIENCE, now=NOW)
    args.update(kw)
    return verify_access_token(token, **args)


def refused(token: Any, **kw: Any) -> str:
    with pytest.raises(InvalidTokenError) as info:
        verify(token, **kw)
    assert info.value.error == "invalid_token"
    return info.value.description


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    h, p, s = token.split(".")
    return (json.loads(base64.urlsafe_b64decode(h + "==")),
            json.loads(base64.urlsafe_b64decode(p + "==")), s)


# -- what we issue --------------------------------------------------------------------------


def test_issued_token_round_trips_with_exactly_the_contract_claims() -> None:
    token, issued = issue()
    h, p, _ = parts(token)
    assert h == {"alg": "ES256", "kid": KEY.kid, "typ": "at+jwt"}
    assert set(p) == {"iss", "aud", "sub", "client_id", "iat", "exp", "jti", "grant_id",
                      "authorization_details"}
    assert p["iat"] == int(NOW.timestamp()) and p["exp"] == p["iat"] + 300
    assert p["authorization_details"] == DETAILS
    got = verify(token)
    assert got == issued
    assert got.iss == ISSUER and got.aud == (AUDIENCE,) and got.sub == "psub_abc"
    assert got.client_id == "svc_a" and got.grant_id == "grt_1" and got.kid == KEY.kid
    assert got.exp - got.iat == MAX_LIFETIME
    assert got.expires_in(NOW) == 300 and got.expires_in(NOW + timedelta(hours=1)) == 0


def test_every_token_has_its_own_jti() -> None:
    assert len({issue()[1].jti for _ in range(50)}) == 50


def test_lifetime_is_capped_by_the_grants_expiry() -> None:
    ends = NOW + timedelta(seconds=90, milliseconds=700)
    token, issued = issue(grant_expires_at=ends)
    assert issued.exp == NOW + timedelta(seconds=90)  # rounded down, never past the grant
    assert parts(token)[1]["exp"] == int(NOW.timestamp()) + 90


@settings(max_examples=300)
@given(
    start=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                       timezones=st.just(UTC)),
    lifetime_ms=st.integers(1, 300_000),
    grant_left_ms=st.integers(1, 10**10),
)
def test_lifetime_never_beyond_the_grant_nor_five_minutes(
    start: datetime, lifetime_ms: int, grant_left_ms: int
) -> None:
    lifetime = timedelta(milliseconds=lifetime_ms)
    ends = start + timedelta(milliseconds=grant_left_ms)
    try:
        token, issued = issue(now=start, lifetime=lifetime, grant_expires_at=ends)
    except InvalidGrantError:
        # Only when not even one whole second of the grant is left after `now`.
        assert int(min(start + lifetime, ends).timestamp()) <= int(start.timestamp())
        return
    assert issued.exp <= ends
    assert issued.exp <= start + lifetime
    assert issued.exp - issued.iat <= MAX_LIFETIME
    assert issued.iat <= start
    assert verify(token, now=start) == issued


def test_no_token_for_an_ended_grant_nor_a_longer_lifetime() -> None:
    with pytest.raises(InvalidGrantError, match="expired") as info:
        issue(grant_expires_at=NOW)
    assert info.value.error == "invalid_grant"
    with pytest.raises(InvalidGrantError):
        issue(grant_expires_at=NOW - timedelta(days=1))
    with pytest.raises(ValueError, match="at most"):
        issue(lifetime=MAX_LIFETIME + timedelta(seconds=1))
    with pytest.raises(ValueError):
        issue(lifetime=timedelta(0))
    with pytest.raises(ValueError, match="aware"):
        issue(now=datetime(2026, 11, 22, 9, 0))  # naive
    with pytest.raises(ValueError, match="sub"):
        issue(sub="")


def test_jwks_publishes_public_keys_only_current_first() -> None:
    retiring = TokenKey.generate()
    doc = jwks(TokenKeys([KEY, retiring], source="env"))
    assert [k["kid"] for k in doc["keys"]] == [KEY.kid, retiring.kid]
    for k in doc["keys"]:
        assert set(k) == {"kty", "crv", "x", "y", "kid", "use", "alg"}
        assert (k["kty"], k["crv"], k["use"], k["alg"]) == ("EC", "P-256", "sig", "ES256")
    assert json.loads(json.dumps(doc)) == doc


# -- a second JOSE library agrees -------------------------------------------------------------


def test_pyjwt_verifies_our_tokens_from_the_jwks() -> None:
    retiring = TokenKey.generate()
    published = jwks(TokenKeys([KEY, retiring], source="env"))
    now = datetime.now(UTC)  # PyJWT checks exp and iat against the real clock
    for signer in (KEY, retiring):
        token, issued = issue(key=signer, now=now, grant_expires_at=now + timedelta(days=1))
        kid = pyjwt.get_unverified_header(token)["kid"]
        jwk = next(k for k in published["keys"] if k["kid"] == kid)
        got = pyjwt.decode(
            token, pyjwt.PyJWK(jwk), algorithms=["ES256"], audience=AUDIENCE, issuer=ISSUER,
            options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]})
        assert got["jti"] == issued.jti and got["grant_id"] == "grt_1"
        assert pyjwt.get_unverified_header(token)["typ"] == "at+jwt"
        with pytest.raises(pyjwt.InvalidAudienceError):
            pyjwt.decode(token, pyjwt.PyJWK(jwk), algorithms=["ES256"], audience="other",
                         options={"verify_exp": False})


def test_we_verify_a_token_pyjwt_signed_with_our_key_format() -> None:
    """The other direction: an independent signer's ES256 at+jwt passes our verifier."""
    private = ec.generate_private_key(ec.SECP256R1())
    token = pyjwt.encode(claims(), private, algorithm="ES256",
                         headers={"kid": "other", "typ": "at+jwt"})
    got = verify(token, keys={"other": public_jwk(private)})
    assert got.jti == "j1"


# -- time, audience, issuer, client ------------------------------------------------------------


def test_expiry_with_a_small_leeway() -> None:
    token, issued = issue()
    verify(token, now=issued.exp + LEEWAY - timedelta(seconds=1))
    assert "expired" in refused(token, now=issued.exp + LEEWAY)
    assert "expired" in refused(token, now=issued.exp + timedelta(days=1))


def test_not_yet_valid_is_refused_beyond_the_leeway() -> None:
    token, _ = issue()
    verify(token, now=NOW - LEEWAY)
    assert "not valid yet" in refused(token, now=NOW - LEEWAY - timedelta(seconds=1))
    signed = KEY.sign(claims(nbf=int(NOW.timestamp()) + 120), typ="at+jwt")
    assert "not valid yet" in refused(signed)
    verify(signed, now=NOW + timedelta(seconds=120))


def test_wrong_audience_or_issuer_is_refused() -> None:
    token, _ = issue()
    assert "not for this resource" in refused(token, audience="https://other.example/v1")
    assert "another server" in refused(token, issuer="https://evil.example")
    # An audience list must contain ours; a substring of ours is not ours.
    assert verify(KEY.sign(claims(aud=["x", AUDIENCE]), typ="at+jwt")).aud == ("x", AUDIENCE)
    refused(KEY.sign(claims(aud=["x"]), typ="at+jwt"))
    refused(KEY.sign(claims(aud=AUDIENCE[:-1]), typ="at+jwt"))
    refused(KEY.sign(claims(aud=[]), typ="at+jwt"))


def test_token_of_service_a_used_by_service_b_is_refused() -> None:
    token, _ = issue(client_id="svc_a")
    assert verify(token, client_id="svc_a").client_id == "svc_a"
    assert "another client" in refused(token, client_id="svc_b")
    # Nor can B rewrite the client_id in A's token: the signature covers it.
    h, p, s = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(p + "=="))
    body["client_id"] = "svc_b"
    assert "signature" in refused(f"{h}.{seg(body)}.{s}", client_id="svc_b")


@pytest.mark.parametrize("missing", ["iss", "aud", "sub", "client_id", "grant_id", "jti",
                                     "iat", "exp"])
def test_every_required_claim_is_required(missing: str) -> None:
    refused(KEY.sign(claims(**{missing: ...}), typ="at+jwt"))


@pytest.mark.parametrize("change", [
    {"exp": "1795338000"}, {"exp": True}, {"iat": None}, {"exp": 2**60}, {"nbf": "soon"},
    {"sub": ""}, {"sub": 7}, {"jti": ["a"]}, {"client_id": None}, {"aud": 5},
    {"authorization_details": {"type": "x"}}, {"authorization_details": ["x"]},
])
def test_claims_of_the_wrong_type_are_refused(change: dict[str, Any]) -> None:
    refused(KEY.sign(claims(**change), typ="at+jwt"))


@pytest.mark.parametrize("exp", ["1e400", "-1e400", "Infinity", "NaN", "1" * 5000])
def test_numbers_that_are_not_numeric_dates_are_refused(exp: str) -> None:
    body = json.dumps(claims(exp=0)).replace('"exp": 0', f'"exp": {exp}').encode()
    signing_input = f"{seg(header(kid='k'))}.{b64(body)}"
    refused(f"{signing_input}.{es256(ATTACKER, signing_input)}", keys={"k": public_jwk(ATTACKER)})


def test_a_lifetime_longer_than_we_ever_give_is_refused() -> None:
    iat = int(NOW.timestamp())
    refused(KEY.sign(claims(exp=iat + 301), typ="at+jwt"))
    verify(KEY.sign(claims(exp=iat + 300), typ="at+jwt"))


# -- the attacks ----------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("signature", ["", "AA", None])
def test_alg_none_is_refused(alg: str, signature: str | None) -> None:
    signing_input = f"{seg(header(alg=alg))}.{seg(claims())}"
    token = signing_input + "." + (signature if signature is not None else
                                   es256(ATTACKER, signing_input))
    refused(token)
    refused(signing_input)  # no third part at all
    refused(signing_input + ".")


def _public_key_bytes() -> dict[str, bytes]:
    jwk = KEY.public_jwk()
    x = int.from_bytes(base64.urlsafe_b64decode(jwk["x"] + "="), "big")
    y = int.from_bytes(base64.urlsafe_b64decode(jwk["y"] + "="), "big")
    pub = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    pem = pub.public_bytes(serialization.Encoding.PEM, spki)
    return {
        "pem": pem,
        "pem-stripped": pem.strip(),
        "der": pub.public_bytes(serialization.Encoding.DER, spki),
        "x962-point": pub.public_bytes(serialization.Encoding.X962,
                                       serialization.PublicFormat.UncompressedPoint),
        "jwk-json": json.dumps(jwk).encode(),
        "jwk-json-compact": json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode(),
    }


@pytest.mark.parametrize("form", sorted(_public_key_bytes()))
@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_keyed_with_the_public_key_is_refused(form: str, alg: str) -> None:
    secret = _public_key_bytes()[form]
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    signing_input = f"{seg(header(alg=alg))}.{seg(claims())}"
    token = f"{signing_input}.{b64(hmac.new(secret, signing_input.encode(), digest).digest())}"
    refused(token)
    refused(token, keys=KEYS.verification_keys())
    if form == "der" and alg == "HS256":
        # The forgery is genuine: an unpinned verifier keyed with the DER bytes takes it.
        assert jose_jws.verify(token, secret, algorithms=["HS256"])


def test_hs256_with_our_alg_spelled_differently_is_refused() -> None:
    secret = _public_key_bytes()["der"]
    for alg in ("es256", "ES256 ", "ES256\u0000", "Es256"):
        signing_input = f"{seg(header(alg=alg))}.{seg(claims())}"
        refused(f"{signing_input}.{hs256(secret, signing_input)}")
        refused(f"{signing_input}.{es256(ATTACKER, signing_input)}")


@pytest.mark.parametrize("alg", ["ES384", "ES512", "RS256", "PS256", "EdDSA", "ES256K", ""])
def test_other_algorithms_are_refused(alg: str) -> None:
    signing_input = f"{seg(header(alg=alg))}.{seg(claims())}"
    refused(f"{signing_input}.{es256(ATTACKER, signing_input)}",
            keys={KEY.kid: public_jwk(ATTACKER)})
    no_alg = header()
    del no_alg["alg"]
    refused(f"{seg(no_alg)}.{seg(claims())}.AAAA")


def test_unknown_or_missing_kid_is_refused() -> None:
    token, _ = issue(key=TokenKey.generate())  # a real token, by a key we do not hold
    assert "not signed by a key of this server" in refused(token)
    for h in (header(kid="nope"), header(kid=""), header(kid=7), header(kid=None),
              {"alg": "ES256", "typ": "at+jwt"}):
        signing_input = f"{seg(h)}.{seg(claims())}"
        refused(f"{signing_input}.{es256(ATTACKER, signing_input)}")


def test_our_kid_on_a_token_signed_by_another_key_is_refused() -> None:
    signing_input = f"{seg(header())}.{seg(claims())}"
    assert "signature" in refused(f"{signing_input}.{es256(ATTACKER, signing_input)}")


def test_tampered_payload_or_header_is_refused() -> None:
    token, _ = issue()
    h, p, s = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(p + "=="))
    for change in ({"exp": body["exp"] + 3600}, {"sub": "psub_other"}, {"grant_id": "grt_2"},
                   {"authorization_details": [{"type": "personal_data", "categories": ["*"]}]},
                   {}):  # {} re-encodes the same claims differently: still not signed bytes
        forged = json.dumps({**body, **change}).encode()
        refused(f"{h}.{b64(forged)}.{s}")
    hdr = json.loads(base64.urlsafe_b64decode(h + "=="))
    refused(f"{seg({**hdr, 'extra': 1})}.{p}.{s}")
    # Signature parts swapped between two genuine tokens.
    other = issue()[0]
    refused(f"{h}.{p}.{other.split('.')[2]}")
    refused(f"{h}.{other.split('.')[1]}.{s}")


@pytest.mark.parametrize("typ", ["JWT", "jwt", None, "", "at+jwt2", "application/jwt", 1])
def test_a_jwt_that_is_not_an_access_token_is_refused(typ: Any) -> None:
    h = header(typ=typ) if typ is not None else {"alg": "ES256", "kid": KEY.kid}
    signing_input = f"{seg(h)}.{seg(claims())}"
    refused(f"{signing_input}.{es256(ATTACKER, signing_input)}",
            keys={KEY.kid: public_jwk(ATTACKER)})


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt"])
def test_rfc_9068_typ_spellings_are_accepted(typ: str) -> None:
    signing_input = f"{seg(header(typ=typ))}.{seg(claims())}"
    verify(f"{signing_input}.{es256(ATTACKER, signing_input)}",
           keys={KEY.kid: public_jwk(ATTACKER)})


@pytest.mark.parametrize("extra", [
    {"jwk": {"kty": "EC"}}, {"jku": "https://evil.example/jwks"}, {"x5u": "https://e"},
    {"x5c": ["MII"]}, {"crit": ["exp"]}, {"b64": False},
])
def test_headers_that_bring_their_own_keys_or_extensions_are_refused(
    extra: dict[str, Any],
) -> None:
    signing_input = f"{seg(header(**extra))}.{seg(claims())}"
    refused(f"{signing_input}.{es256(ATTACKER, signing_input)}",
            keys={KEY.kid: public_jwk(ATTACKER)})


def test_duplicate_members_are_refused() -> None:
    """A parser that keeps the first `alg` and one that keeps the last must never disagree."""
    raw_header = b'{"alg":"HS256","alg":"ES256","kid":"k","typ":"at+jwt"}'
    signing_input = f"{b64(raw_header)}.{seg(claims())}"
    refused(f"{signing_input}.{es256(ATTACKER, signing_input)}", keys={"k": public_jwk(ATTACKER)})
    raw_claims = json.dumps(claims()).replace('"sub": "psub_abc"',
                                              '"sub": "psub_abc", "sub": "psub_x"').encode()
    signing_input = f"{seg(header(kid='k'))}.{b64(raw_claims)}"
    refused(f"{signing_input}.{es256(ATTACKER, signing_input)}", keys={"k": public_jwk(ATTACKER)})


def test_malformed_tokens_are_refused() -> None:
    token, _ = issue()
    h, p, s = token.split(".")
    for bad in ("", ".", "..", "a.b.c", f"{h}.{p}", f"{h}.{p}.{s}.{s}", f"{h}={'.'}{p}.{s}",
                f"{h}.{p}.{s}=", f"{h}.{p}.{s}==", f" {token}", f"{token}\n", token + "A",
                token.replace("-", "+").replace("_", "/"), f"{h}.{p}.{s[:-1]}",
                "x" * 10_000, f"{h}.{p}.{s}" + "." * 3):
        if bad == token:
            continue
        refused(bad)
    for not_text in (None, token.encode(), 42, [token]):
        refused(not_text)
    verify(token)


def test_a_second_spelling_of_the_same_signature_is_refused() -> None:
    """64 bytes are 86 base64url characters: the last one carries 4 unused bits. A lenient
    decoder reads the same signature whatever they are; we accept the canonical one only."""
    token, _ = issue()
    h, p, s = token.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = s[:-1] + alphabet[alphabet.index(s[-1]) ^ 1]
    assert base64.urlsafe_b64decode(twin + "==") == base64.urlsafe_b64decode(s + "==")
    assert "canonical" in refused(f"{h}.{p}.{twin}")


TOKEN, _ = issue()


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_byte_flip_is_refused(data: st.DataObject) -> None:
    raw = bytearray(TOKEN.encode("ascii"))
    i = data.draw(st.integers(0, len(raw) - 1), label="index")
    mask = data.draw(st.integers(1, 255), label="mask")
    raw[i] ^= mask
    with pytest.raises(InvalidTokenError):
        verify(raw.decode("latin-1"))
    verify(TOKEN)  # the original still passes: it was the flip that was refused



def test_retiring_key_verifies_until_it_is_dropped() -> None:
    old = TokenKey.generate()
    token, _ = issue(key=old)
    both = TokenKeys([KEY, old], source="env")
    assert verify(token, keys=both).kid == old.kid
    assert verify(token, keys=both.verification_keys()).kid == old.kid
    refused(token, keys=TokenKeys([KEY], source="env"))


def test_registered_key_that_is_not_a_p256_public_key_is_refused() -> None:
    token, _ = issue()
    bad = dict(KEY.public_jwk(), crv="P-384")
    refused(token, keys={KEY.kid: bad})
    refused(token, keys={KEY.kid: {"kty": "oct", "k": b64(b"secret")}})


# -- the verified-token cache ---------------------------------------------------------------


def test_a_cached_token_is_still_held_to_time_key_and_client() -> None:
    cache = VerifiedTokens(size=2)
    token, _ = issue()
    first = verify(token, cache=cache)
    assert verify(token, cache=cache) is first  # the signature is not checked again
    with pytest.raises(InvalidTokenError, match="expired"):
        verify(token, cache=cache, now=first.exp + LEEWAY)
    with pytest.raises(InvalidTokenError, match="another client"):
        verify(token, cache=cache, client_id="svc_other")
    with pytest.raises(InvalidTokenError, match="not signed by a key"):
        verify(token, cache=cache, keys=TokenKeys([TokenKey.generate()], source="env"))
    with pytest.raises(InvalidTokenError, match="not for this resource"):
        verify(token, cache=cache, audience="https://elsewhere.example/v1")


def test_a_forged_token_is_never_cached() -> None:
    cache = VerifiedTokens()
    token, _ = issue()
    head, body, _sig = token.split(".")
    forged = f"{head}.{body}.{es256(ATTACKER, head + '.' + body)}"
    for _ in range(2):
        with pytest.raises(InvalidTokenError):
            verify(forged, cache=cache)


def test_the_cache_keeps_at_most_its_size() -> None:
    cache = VerifiedTokens(size=2)
    tokens = [issue()[0] for _ in range(3)]
    for token in tokens:
        verify(token, cache=cache)
    assert cache.get(tokens[0], issuer=ISSUER, audience=AUDIENCE) is None
    assert cache.get(tokens[2], issuer=ISSUER, audience=AUDIENCE) is not None
