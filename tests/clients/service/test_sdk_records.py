"""Records an issuer signs (`ServiceKey.sign_record`) and the SDK's own check of them
(`verify_record`): a record PyJWT verifies with the public JWKS, and any change to its
bytes, any other algorithm, key or claim is refused with a reason."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st

from clients.service import RecordInvalid, ServiceKey, SignedRecord, verify_record
from clients.service.keys import b64url

ISSUER = "svc_benefits"
CATEGORY = "benefits.attendance_allowance"
VALUE = {"rate": "higher", "awarded_on": "2026-11-02"}
NOW = 1_800_000_000
KEY = ServiceKey.generate(kid="benefits-2026")
JWKS = KEY.public_jwks()
RECORD = KEY.sign_record(CATEGORY, VALUE, issuer=ISSUER, iat=NOW, jti="award-1")
DUPLICATE_ALG = b'{"alg":"ES256","alg":"ES256"}'


def check(compact: str, jwks: dict[str, Any] | None = None, **kw: Any) -> SignedRecord:
    return verify_record(compact, JWKS if jwks is None else jwks,
                         **{"issuer": ISSUER, "now": NOW, **kw})


def reason(compact: str, jwks: dict[str, Any] | None = None, **kw: Any) -> str | None:
    with pytest.raises(RecordInvalid) as caught:
        check(compact, jwks, **kw)
    return caught.value.code


def segment(doc: dict[str, Any]) -> str:
    return b64url(json.dumps(doc, separators=(",", ":")).encode())


def es256(key: ec.EllipticCurvePrivateKey, signing_input: str, half: int = 32) -> str:
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return b64url(r.to_bytes(half, "big") + s.to_bytes(half, "big"))


def forged(header: dict[str, Any], claims: dict[str, Any] | None = None,
           signer: ServiceKey = KEY) -> str:
    """A record with this header and these claims, signed ES256 by `signer`."""
    signing_input = f"{segment(header)}.{segment(claims or payload())}"
    return f"{signing_input}.{es256(signer._key, signing_input)}"


def header(**changes: Any) -> dict[str, Any]:
    return {"alg": "ES256", "typ": "record+jwt", "kid": KEY.key_id, **changes}


def payload(**changes: Any) -> dict[str, Any]:
    doc = {"iss": ISSUER, "category": CATEGORY, "value": VALUE, "iat": NOW, "jti": "award-1",
           **changes}
    return {k: v for k, v in doc.items() if v is not None}


# -- signing ------------------------------------------------------------------------------


def test_a_signed_record_is_the_contract_format_and_verifies_with_pyjwt() -> None:
    assert pyjwt.get_unverified_header(RECORD) == {"alg": "ES256", "typ": "record+jwt",
                                                   "kid": "benefits-2026"}
    public = pyjwt.PyJWK(JWKS["keys"][0]).key
    claims = pyjwt.decode(RECORD, public, algorithms=["ES256"], options={"verify_iat": False})
    assert claims == {"iss": ISSUER, "category": CATEGORY, "value": VALUE, "iat": NOW,
                      "jti": "award-1"}


def test_defaults_a_random_jti_and_the_clock_and_carries_exp() -> None:
    one, two = (KEY.sign_record(CATEGORY, VALUE, issuer=ISSUER, exp=NOW + 60)
                for _ in range(2))
    a, b = (pyjwt.decode(t, options={"verify_signature": False}) for t in (one, two))
    assert a["jti"] != b["jti"] and len(a["jti"]) >= 16
    assert a["exp"] == NOW + 60 and abs(a["iat"] - b["iat"]) <= 1 and a["iat"] > NOW - 10**9


def test_a_key_without_kid_signs_with_its_rfc7638_thumbprint() -> None:
    key = ServiceKey.generate()
    jwk = key.public_jwk()
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")},
                           sort_keys=True, separators=(",", ":"))
    expected = base64.urlsafe_b64encode(
        hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()
    assert key.key_id == expected == key.public_jwks()["keys"][0]["kid"]
    assert pyjwt.get_unverified_header(
        key.sign_record(CATEGORY, VALUE, issuer=ISSUER))["kid"] == expected
    assert "kid" not in key.public_jwk()  # client assertions stay as they were


def test_public_jwks_never_holds_the_private_key() -> None:
    (jwk,) = JWKS["keys"]
    assert set(jwk) == {"kty", "crv", "x", "y", "kid", "use", "alg"}


@pytest.mark.parametrize(("args", "kw", "error"), [
    (("", VALUE), {"issuer": ISSUER}, ValueError),
    ((CATEGORY, VALUE), {"issuer": ""}, ValueError),
    ((CATEGORY, None), {"issuer": ISSUER}, TypeError),  # no value: withdraw instead
    ((CATEGORY, VALUE), {"issuer": ISSUER, "iat": 1.5}, TypeError),
    ((CATEGORY, VALUE), {"issuer": ISSUER, "exp": True}, TypeError),
    ((CATEGORY, {"n": float("nan")}), {"issuer": ISSUER}, ValueError),
])
def test_signing_refuses_what_no_reader_could_accept(args: tuple[Any, ...], kw: dict[str, Any],
                                                     error: type[Exception]) -> None:
    with pytest.raises(error):
        KEY.sign_record(*args, **kw)


# -- verifying ----------------------------------------------------------------------------


def test_round_trip() -> None:
    record = check(RECORD, category=CATEGORY)
    assert record == SignedRecord(issuer=ISSUER, category=CATEGORY, value=VALUE,
                                  issued_at=NOW, expires_at=None, jti="award-1",
                                  kid="benefits-2026", jws=RECORD)


def test_any_key_of_a_rotated_jwks_verifies_by_kid() -> None:
    new = ServiceKey.generate(kid="benefits-2027")
    both = {"keys": [*new.public_jwks()["keys"], *JWKS["keys"]]}
    assert check(RECORD, both).kid == "benefits-2026"
    assert check(new.sign_record(CATEGORY, VALUE, issuer=ISSUER, iat=NOW), both).kid == \
        "benefits-2027"


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_flipped_byte_is_refused(data: st.DataObject) -> None:
    raw = bytearray(RECORD.encode())
    where = data.draw(st.integers(0, len(raw) - 1))
    raw[where] ^= data.draw(st.integers(1, 255))
    try:
        tampered = raw.decode()
    except UnicodeDecodeError:
        return  # not text: no record at all
    with pytest.raises(RecordInvalid):
        check(tampered)


@settings(max_examples=100, deadline=None)
@given(part=st.sampled_from([0, 1, 2]), data=st.data())
def test_any_flipped_bit_inside_a_decoded_part_is_refused(part: int, data: st.DataObject) -> None:
    parts = RECORD.split(".")
    raw = bytearray(base64.urlsafe_b64decode(parts[part] + "=="))
    bit = data.draw(st.integers(0, len(raw) * 8 - 1))
    raw[bit // 8] ^= 1 << (bit % 8)
    parts[part] = b64url(bytes(raw))
    with pytest.raises(RecordInvalid):
        check(".".join(parts))


def test_other_algorithms_are_refused() -> None:
    claims = segment(payload())
    # HS256 keyed with the public key (the classic confusion), and none.
    for secret in (json.dumps(JWKS["keys"][0]).encode(), KEY.public_jwk()["x"].encode()):
        signing_input = f"{segment(header(alg='HS256'))}.{claims}"
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        assert reason(f"{signing_input}.{b64url(mac)}") == "malformed"
    assert reason(f"{segment(header(alg='none'))}.{claims}.") == "malformed"
    # ES384 with a P-384 key published under the same kid, EdDSA with an Ed25519 key.
    p384 = ec.generate_private_key(ec.SECP384R1())
    signing_input = f"{segment(header(alg='ES384'))}.{claims}"
    r, s = decode_dss_signature(p384.sign(signing_input.encode(), ec.ECDSA(hashes.SHA384())))
    es384 = f"{signing_input}.{b64url(r.to_bytes(48, 'big') + s.to_bytes(48, 'big'))}"
    n = p384.public_key().public_numbers()
    p384_jwks = {"keys": [{"kty": "EC", "crv": "P-384", "kid": KEY.key_id,
                           "x": b64url(n.x.to_bytes(48, "big")),
                           "y": b64url(n.y.to_bytes(48, "big"))}]}
    assert reason(es384, p384_jwks) == "malformed"
    ed = ed25519.Ed25519PrivateKey.generate()
    signing_input = f"{segment(header(alg='EdDSA'))}.{claims}"
    assert reason(f"{signing_input}.{b64url(ed.sign(signing_input.encode()))}") == "malformed"
    # And an ES256 header over a key that is not P-256.
    assert reason(forged(header()), p384_jwks) == "unknown_key"


@pytest.mark.parametrize(("hdr", "code"), [
    (header(typ="JWT"), "malformed"),
    (header(typ=None), "malformed"),
    (header(crit=["exp"]), "malformed"),
    (header(jku="https://evil.example/jwks"), "malformed"),
    (header(jwk=JWKS["keys"][0]), "malformed"),
    (header(x5u="https://evil.example/cert"), "malformed"),
    (header(kid="someone-else"), "unknown_key"),
    ({"alg": "ES256", "typ": "record+jwt"}, "unknown_key"),
])
def test_headers_other_than_the_contract_are_refused(hdr: dict[str, Any], code: str) -> None:
    assert reason(forged({k: v for k, v in hdr.items() if v is not None})) == code


def test_a_key_outside_the_jwks_is_refused_even_under_a_known_kid() -> None:
    impostor = ServiceKey.generate(kid=KEY.key_id)
    assert reason(impostor.sign_record(CATEGORY, VALUE, issuer=ISSUER, iat=NOW)) == \
        "bad_signature"


@pytest.mark.parametrize(("claims", "kw", "code"), [
    (payload(iss="svc_other"), {}, "wrong_issuer"),
    (payload(), {"category": "benefits.universal_credit"}, "wrong_category"),
    (payload(iss=7), {}, "malformed"),
    (payload(category=None), {}, "malformed"),
    (payload(value=None), {}, "malformed"),
    ({**payload(), "value": None}, {}, "malformed"),
    (payload(jti=""), {}, "malformed"),
    (payload(jti="j" * 201), {}, "malformed"),
    (payload(jti=5), {}, "malformed"),
    (payload(iat=None), {}, "malformed"),
    (payload(iat=float(NOW)), {}, "malformed"),
    (payload(iat=True), {}, "malformed"),
    (payload(iat=NOW + 61), {}, "not_yet_valid"),
    (payload(exp=NOW), {}, "expired"),
    (payload(exp="later"), {}, "malformed"),
])
def test_claims_are_checked(claims: dict[str, Any], kw: dict[str, Any], code: str) -> None:
    assert reason(forged(header(), claims), **kw) == code


@pytest.mark.parametrize("value", ["1955-04-02", ["a", 1], 0, False, {"items": []}])
def test_a_value_is_any_json_its_schema_may_take(value: Any) -> None:
    # identity.date_of_birth is a string: a record of it is signed and checked alike.
    signed = KEY.sign_record("identity.date_of_birth", value, issuer=ISSUER, iat=NOW)
    assert check(signed, category="identity.date_of_birth").value == value
    assert check(forged(header(), payload(value=value))).value == value


def test_small_clock_skew_and_a_future_exp_are_accepted() -> None:
    assert check(forged(header(), payload(iat=NOW + 60, exp=NOW + 1))).expires_at == NOW + 1


def test_size_is_checked_before_anything_else() -> None:
    big = KEY.sign_record(CATEGORY, {"note": "x" * 70_000}, issuer=ISSUER, iat=NOW)
    assert reason(big) == "too_large"
    assert reason(RECORD, max_bytes=len(RECORD) - 1) == "too_large"


@pytest.mark.parametrize("bad", [
    "", "a.b", "a.b.c.d", RECORD + "=", RECORD.replace(".", "..", 1),
    f"{segment(header())}.{b64url(b'[1]')}.{RECORD.split('.')[2]}",
    f"{b64url(DUPLICATE_ALG)}.{RECORD.split('.', 1)[1]}",
])
def test_malformed_compact_forms_are_refused(bad: str) -> None:
    assert reason(bad) == "malformed"


def test_a_jwks_that_is_not_a_set_is_a_programming_error() -> None:
    with pytest.raises(TypeError):
        verify_record(RECORD, JWKS["keys"][0], now=NOW)
