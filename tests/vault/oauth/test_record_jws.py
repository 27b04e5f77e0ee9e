"""The vault's check of an issuer's signed record (ARCHITECTURE §8): records the SDK signs
verify; every other algorithm, key, header, claim, size and every changed byte is refused
with the reason the write endpoint will report."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st

from clients.service.keys import ServiceKey, b64url
from vault.domain.service_keys import check_service_jwks
from vault.oauth.record_jws import (
    RecordBadSignature,
    RecordExpired,
    RecordMalformed,
    RecordNotYetValid,
    RecordRefused,
    RecordTooLarge,
    RecordUnknownKey,
    RecordWrongCategory,
    RecordWrongIssuer,
    VerifiedRecord,
    verify_record,
)

ISSUER = "svc_benefits"
CATEGORY = "benefits.attendance_allowance"
VALUE = {"rate": "higher"}
NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)
T = int(NOW.timestamp())
KEY = ServiceKey.generate(kid="k1")
OLD = ServiceKey.generate()  # no kid of its own: registered under its thumbprint
JWKS = check_service_jwks({"keys": [KEY.public_jwk(), OLD.public_jwk()]})
RECORD = KEY.sign_record(CATEGORY, VALUE, issuer=ISSUER, iat=T, jti="award-1")


def check(compact: Any, **kw: Any) -> VerifiedRecord:
    args: dict[str, Any] = {"expected_issuer": ISSUER, "jwks": JWKS, "now": NOW, **kw}
    return verify_record(compact, **args)


def refused(compact: Any, error: type[RecordRefused] = RecordRefused, **kw: Any) -> str:
    with pytest.raises(error) as caught:
        check(compact, **kw)
    return caught.value.reason


def seg(doc: Any) -> str:
    return b64url(json.dumps(doc, separators=(",", ":")).encode())


def forged(header: dict[str, Any], claims: dict[str, Any], key: ServiceKey = KEY) -> str:
    signing_input = f"{seg(header)}.{seg(claims)}"
    r, s = decode_dss_signature(key._key.sign(signing_input.encode(),
                                              ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def hdr(**changes: Any) -> dict[str, Any]:
    return {k: v for k, v in {"alg": "ES256", "typ": "record+jwt", "kid": "k1",
                              **changes}.items() if v is not None}


def claims(**changes: Any) -> dict[str, Any]:
    return {k: v for k, v in {"iss": ISSUER, "category": CATEGORY, "value": VALUE, "iat": T,
                              "jti": "award-1", **changes}.items() if v is not None}


def test_round_trip_with_the_sdk_signer() -> None:
    assert check(RECORD, expected_category=CATEGORY) == VerifiedRecord(
        issuer=ISSUER, category=CATEGORY, value=VALUE, issued_at=T, expires_at=None,
        jti="award-1", kid="k1", jws=RECORD)


def test_any_key_of_the_set_verifies_by_its_kid() -> None:
    old = OLD.sign_record(CATEGORY, VALUE, issuer=ISSUER, iat=T, exp=T + 1)
    record = check(old)
    assert record.kid == OLD.thumbprint() and record.expires_at == T + 1


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_flipped_byte_in_header_payload_or_signature_is_refused(data: st.DataObject) -> None:
    raw = bytearray(RECORD.encode())
    where = data.draw(st.integers(0, len(raw) - 1), label="where")
    raw[where] ^= data.draw(st.integers(1, 255), label="xor")
    refused(raw.decode("utf-8", "replace"))


@settings(max_examples=150, deadline=None)
@given(part=st.sampled_from([0, 1, 2]), data=st.data())
def test_any_flipped_bit_of_a_decoded_part_is_refused(part: int, data: st.DataObject) -> None:
    parts = RECORD.split(".")
    raw = bytearray(base64.urlsafe_b64decode(parts[part] + "=="))
    bit = data.draw(st.integers(0, len(raw) * 8 - 1))
    raw[bit // 8] ^= 1 << (bit % 8)
    parts[part] = b64url(bytes(raw))
    refused(".".join(parts))


def test_other_algorithms_are_refused() -> None:
    body = seg(claims())
    jwk = JWKS["keys"][0]
    for secret in (json.dumps(jwk).encode(), jwk["x"].encode()):  # HS256 over the public key
        signing_input = f"{seg(hdr(alg='HS256'))}.{body}"
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        assert refused(f"{signing_input}.{b64url(mac)}", RecordMalformed) == "malformed"
    refused(f"{seg(hdr(alg='none'))}.{body}.", RecordMalformed)
    p384 = ec.generate_private_key(ec.SECP384R1())
    signing_input = f"{seg(hdr(alg='ES384'))}.{body}"
    r, s = decode_dss_signature(p384.sign(signing_input.encode(), ec.ECDSA(hashes.SHA384())))
    refused(f"{signing_input}.{b64url(r.to_bytes(48, 'big') + s.to_bytes(48, 'big'))}",
            RecordMalformed)
    signing_input = f"{seg(hdr(alg='EdDSA'))}.{body}"
    ed = ed25519.Ed25519PrivateKey.generate()
    refused(f"{signing_input}.{b64url(ed.sign(signing_input.encode()))}", RecordMalformed)


@pytest.mark.parametrize(("header", "error"), [
    (hdr(typ="JWT"), RecordMalformed),
    (hdr(typ="Record+JWT"), RecordMalformed),
    (hdr(typ=None), RecordMalformed),
    (hdr(crit=["exp"]), RecordMalformed),
    (hdr(jku="https://evil.example/jwks"), RecordMalformed),
    (hdr(jwk=KEY.public_jwk()), RecordMalformed),
    (hdr(x5u="https://evil.example/x"), RecordMalformed),
    (hdr(kid=None), RecordUnknownKey),
    (hdr(kid=""), RecordUnknownKey),
    (hdr(kid=["k1"]), RecordUnknownKey),
    (hdr(kid="k2"), RecordUnknownKey),
])
def test_headers_outside_the_contract(header: dict[str, Any],
                                      error: type[RecordRefused]) -> None:
    refused(forged(header, claims()), error)


def test_a_key_outside_the_set_under_a_known_kid_is_a_bad_signature() -> None:
    impostor = ServiceKey.generate(kid="k1")
    record = impostor.sign_record(CATEGORY, VALUE, issuer=ISSUER, iat=T)
    assert refused(record, RecordBadSignature) == "bad_signature"


@pytest.mark.parametrize(("payload", "kw", "error"), [
    (claims(iss="svc_other"), {}, RecordWrongIssuer),
    (claims(), {"expected_category": "benefits.universal_credit"}, RecordWrongCategory),
    (claims(iss=None), {}, RecordMalformed),
    (claims(iss=1), {}, RecordMalformed),
    (claims(category=None), {}, RecordMalformed),
    (claims(category=["x"]), {}, RecordMalformed),
    (claims(value=None), {}, RecordMalformed),
    ({**claims(), "value": None}, {}, RecordMalformed),  # null: there is no null record
    (claims(jti=None), {}, RecordMalformed),
    (claims(jti=""), {}, RecordMalformed),
    (claims(jti="j" * 201), {}, RecordMalformed),
    (claims(iat=None), {}, RecordMalformed),
    (claims(iat=T + 0.5), {}, RecordMalformed),
    (claims(iat=True), {}, RecordMalformed),
    (claims(iat=2**60), {}, RecordMalformed),
    (claims(iat="now"), {}, RecordMalformed),
    (claims(iat=T + 61), {}, RecordNotYetValid),
    (claims(exp=T), {}, RecordExpired),
    (claims(exp=T - 3600), {}, RecordExpired),
    (claims(exp=1.5), {}, RecordMalformed),
])
def test_claims(payload: dict[str, Any], kw: dict[str, Any],
                error: type[RecordRefused]) -> None:
    refused(forged(hdr(), payload), error, **kw)


@pytest.mark.parametrize("value", ["1955-04-02", [1, "a"], 0, False, {}])
def test_a_value_is_any_json_its_schema_may_take(value: Any) -> None:
    # identity.date_of_birth is a string; the category's schema, not the format, decides.
    assert check(forged(hdr(), claims(value=value))).value == value
    signed = KEY.sign_record("identity.date_of_birth", value, issuer=ISSUER, iat=T)
    assert check(signed, expected_category="identity.date_of_birth").value == value


def test_a_little_clock_skew_is_allowed() -> None:
    assert check(forged(hdr(), claims(iat=T + 60, exp=T + 1))).issued_at == T + 60
    assert check(RECORD, now=NOW + timedelta(days=400)).jti == "award-1"  # no exp: no end


def test_over_64_kib_is_refused_before_it_is_parsed() -> None:
    big = KEY.sign_record(CATEGORY, {"note": "x" * 66_000}, issuer=ISSUER, iat=T)
    assert refused(big, RecordTooLarge) == "too_large"
    assert refused("." * 70_000, RecordTooLarge) == "too_large"
    fits = KEY.sign_record(CATEGORY, {"note": "x" * 40_000}, issuer=ISSUER, iat=T)
    assert check(fits).value == {"note": "x" * 40_000}  # far above the 8 KiB token limit


@pytest.mark.parametrize("bad", [None, 7, "", "a.b", "a.b.c.d", RECORD + "=",
                                 f"{seg(hdr())}.{seg([1])}.{RECORD.split('.')[2]}"])
def test_not_a_compact_jws(bad: Any) -> None:
    assert refused(bad, RecordMalformed) == "malformed"


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        check(RECORD, now=datetime(2026, 12, 7))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20)


@settings(max_examples=100, deadline=None)
@given(category=st.text(min_size=1, max_size=64),
       value=st.dictionaries(st.text(max_size=8), JSON, max_size=5),
       jti=st.text(min_size=1, max_size=200), iat=st.integers(T - 10**8, T + 60))
def test_round_trip_for_any_record_the_sdk_signs(category: str, value: dict[str, Any],
                                                 jti: str, iat: int) -> None:
    compact = KEY.sign_record(category, value, issuer=ISSUER, jti=jti, iat=iat)
    record = check(compact, expected_category=category)
    assert (record.category, record.value, record.jti, record.issued_at, record.jws) == \
        (category, value, jti, iat, compact)
