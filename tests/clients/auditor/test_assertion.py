"""The auditor's own offline WebAuthn assertion check (WebAuthn L3 §7.2).

Assertions come from the software authenticator (the test's stand-in for a citizen's
device); each rule broken is refused with its reason, the same reason the wallet's own
check gives; any changed byte is refused.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from clients.auditor.assertion import (
    EDDSA,
    ES256,
    RS256,
    AssertionInvalid,
    StoredAssertion,
    b64url_decode,
    b64url_encode,
    load_cose_key,
    parse_assertion,
    verify_assertion,
)
from vault.services.approvals import ApprovalProof
from wallet.passkeys.offline import AssertionRejected, verify_approval_offline
from wallet.passkeys.software import SoftAuthenticator, cbor

ORIGIN = "http://localhost:8000"
RP_ID = "localhost"
CHALLENGE = hashlib.sha256(b"the terms").digest()


def device(alg: str = "ES256") -> tuple[SoftAuthenticator, bytes]:
    d = SoftAuthenticator(origin=ORIGIN, alg=alg)  # type: ignore[arg-type]
    d.create({"rp": {"id": RP_ID}, "user": {"id": b64url_encode(b"citizen")},
              "challenge": b64url_encode(b"register")})
    [cred] = d.credentials.values()
    return d, cred.public_key


ES, ES_KEY = device("ES256")
ED, ED_KEY = device("EdDSA")
RS, RS_KEY = device("RS256")  # a 2048-bit RSA key, as Windows Hello on a TPM makes
DEVICES = {"ES256": (ES, ES_KEY), "EdDSA": (ED, ED_KEY), "RS256": (RS, RS_KEY)}


def signed(d: SoftAuthenticator = ES, **knobs: Any) -> dict[str, str]:
    return d.proof(challenge=knobs.pop("challenge", CHALLENGE), **knobs).to_json()


def check(raw: dict[str, str], key: bytes = ES_KEY, *, challenge: bytes = CHALLENGE,
          rp_id: str = RP_ID, origins: tuple[str, ...] = (ORIGIN,)) -> int:
    done = verify_assertion(parse_assertion(raw), public_key=load_cose_key(key),
                            expected_challenge=challenge, expected_rp_id=rp_id,
                            expected_origins=origins)
    return done.sign_count


def reason(raw: dict[str, str], key: bytes = ES_KEY, **kw: Any) -> str:
    with pytest.raises(AssertionInvalid) as caught:
        check(raw, key, **kw)
    wallet = wallet_reason(raw, key, **kw)
    assert wallet == caught.value.reason, (wallet, caught.value)
    return caught.value.reason


def wallet_reason(raw: dict[str, str], key: bytes, *, challenge: bytes = CHALLENGE,
                  rp_id: str = RP_ID, origins: tuple[str, ...] = (ORIGIN,)) -> str | None:
    """What the wallet's own offline check says of the same assertion (None: accepted)."""
    try:
        verify_approval_offline(public_key_cose=key, challenge=challenge,
                                proof=ApprovalProof(**raw), rp_id=rp_id, origins=origins)
    except AssertionRejected as exc:
        return exc.reason
    return None


def resigned(client_data: dict[str, Any], d: SoftAuthenticator = ES) -> dict[str, str]:
    """An assertion over `client_data` as given, signed by the device's real key."""
    raw = signed(d)
    [cred] = d.credentials.values()
    assert isinstance(cred.key, ec.EllipticCurvePrivateKey)
    cdj = json.dumps(client_data, separators=(",", ":")).encode()
    auth = b64url_decode(raw["authenticator_data"], what="")
    sig = cred.key.sign(auth + hashlib.sha256(cdj).digest(), ec.ECDSA(hashes.SHA256()))
    return {**raw, "client_data_json": b64url_encode(cdj), "signature": b64url_encode(sig)}


# -- accepted -----------------------------------------------------------------------------


def test_a_real_assertion_verifies_es256_eddsa_and_rs256() -> None:
    assert check(signed(ES)) > 0
    assert check(signed(ED), ED_KEY) > 0
    assert check(signed(RS), RS_KEY) > 0
    assert load_cose_key(ES_KEY).alg == ES256 and load_cose_key(ED_KEY).alg == EDDSA
    assert load_cose_key(RS_KEY).alg == RS256
    assert wallet_reason(signed(ES), ES_KEY) is None
    assert wallet_reason(signed(RS), RS_KEY) is None


def test_rs256_is_pkcs1_v1_5_with_sha256_and_nothing_else() -> None:
    """RFC 8812 §2: the same key over the same bytes, padded with PSS or hashed with
    another hash, is refused by the auditor and by the wallet alike."""
    raw = signed(RS)
    [cred] = RS.credentials.values()
    assert isinstance(cred.key, rsa.RSAPrivateKey)
    data = (b64url_decode(raw["authenticator_data"], what="")
            + hashlib.sha256(b64url_decode(raw["client_data_json"], what="")).digest())
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)
    assert check({**raw, "signature": b64url_encode(
        cred.key.sign(data, padding.PKCS1v15(), hashes.SHA256()))}, RS_KEY) > 0
    for sig in (cred.key.sign(data, pss, hashes.SHA256()),
                cred.key.sign(data, padding.PKCS1v15(), hashes.SHA384()),
                cred.key.sign(data, padding.PKCS1v15(), hashes.SHA1())):
        assert reason({**raw, "signature": b64url_encode(sig)}, RS_KEY) == "bad_signature"


def test_any_allowed_origin_will_do() -> None:
    raw = signed(origin="https://vault.example")
    assert check(raw, origins=(ORIGIN, "https://vault.example"))


# -- each rule -----------------------------------------------------------------------------


def test_client_data_of_another_type_is_refused() -> None:
    assert reason(signed(client_type="webauthn.create")) == "wrong_type"


def test_another_challenge_is_refused() -> None:
    assert reason(signed(challenge=b"other terms")) == "challenge_mismatch"
    assert reason(signed(), challenge=b"x" * 32) == "challenge_mismatch"


def test_another_origin_is_refused() -> None:
    assert reason(signed(origin="https://evil.example")) == "wrong_origin"


def test_an_assertion_made_inside_another_sites_frame_is_refused() -> None:
    assert reason(signed(cross_origin=True)) == "cross_origin"
    base = json.loads(b64url_decode(signed()["client_data_json"], what=""))
    assert reason(resigned({**base, "topOrigin": "https://evil.example"})) == "cross_origin"
    assert reason(resigned({**base, "crossOrigin": "false"})) == "cross_origin"


def test_another_rp_id_is_refused() -> None:
    assert reason(signed(rp_id="evil.example")) == "wrong_rp_id"
    assert reason(signed(), rp_id="vault.example") == "wrong_rp_id"


def test_the_user_must_be_present_and_verified() -> None:
    assert reason(signed(up=False)) == "user_not_present"
    assert reason(signed(uv=False)) == "user_not_verified"


def test_a_signature_by_another_key_is_refused() -> None:
    assert reason(signed(wrong_key=True)) == "bad_signature"
    assert reason(signed(ES), ED_KEY) == "bad_signature"
    assert reason(signed(RS, wrong_key=True), RS_KEY) == "bad_signature"
    assert reason(signed(ES), RS_KEY) == "bad_signature"


@pytest.mark.parametrize("field", ["credential_id", "authenticator_data", "client_data_json",
                                   "signature"])
def test_fields_that_are_not_canonical_base64url_are_refused(field: str) -> None:
    raw = signed()
    for bad in (raw[field] + "=", raw[field] + "*", None, raw[field][:-1] + "/"):
        with pytest.raises(AssertionInvalid) as caught:
            parse_assertion({**raw, field: bad})
        assert caught.value.reason == "malformed"
    with pytest.raises(AssertionInvalid):
        parse_assertion(None)


def test_non_canonical_spellings_of_the_same_bytes_are_refused() -> None:
    text = b64url_encode(b"\xff")  # "_w": its last character has spare bits
    assert b64url_decode(text, what="x") == b"\xff"
    assert base64.urlsafe_b64decode("_x==") == b"\xff"
    with pytest.raises(AssertionInvalid, match="canonical"):
        b64url_decode("_x", what="x")


def test_short_authenticator_data_and_non_json_client_data_are_refused() -> None:
    raw = signed()
    short = {**raw, "authenticator_data": b64url_encode(b"\x00" * 36)}
    assert reason(short) == "malformed"
    assert reason({**raw, "client_data_json": b64url_encode(b"\xff{")}) == "malformed"
    assert reason(resigned({"type": "webauthn.get"})) == "malformed"


def test_keys_the_vault_does_not_accept_are_refused() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key().public_numbers()
    es384 = cbor({1: 2, 3: -35, -1: 2, -2: p384.x.to_bytes(48, "big"),
                  -3: p384.y.to_bytes(48, "big")})
    with pytest.raises(AssertionInvalid) as caught:
        load_cose_key(es384)
    assert caught.value.reason == "unsupported_algorithm"
    # RSA only as RS256 (not PS256 -37, RS384 -258, nor "ES256" on an RSA key), and
    # only 2048 to 4096 bits with a small public exponent.
    [cred] = RS.credentials.values()
    assert isinstance(cred.key, rsa.RSAPrivateKey)
    n = cred.key.public_key().public_numbers().n.to_bytes(256, "big")
    assert cbor({1: 3, 3: -257, -1: n, -2: (65537).to_bytes(3, "big")}) == RS_KEY
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    small_n = small.public_numbers().n.to_bytes(128, "big")
    for alg, modulus, e in ((-37, n, 65537), (-258, n, 65537), (-7, n, 65537),
                            (-257, small_n, 65537), (-257, n, 2**64 + 1)):
        cose = cbor({1: 3, 3: alg, -1: modulus, -2: e.to_bytes((e.bit_length() + 7) // 8,
                                                               "big")})
        with pytest.raises(AssertionInvalid) as caught:
            load_cose_key(cose)
        assert caught.value.reason == "unsupported_algorithm", (alg, len(modulus), e)
        assert wallet_reason(signed(RS), cose) == "unsupported_algorithm"
    for junk in (b"", b"\x04" + bytes(64), cbor({1: 2}), b"\xa1\x01"):
        with pytest.raises(AssertionInvalid) as caught:
            load_cose_key(junk)
        assert caught.value.reason == "malformed"


# -- any changed byte -------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(field=st.sampled_from(["authenticator_data", "client_data_json", "signature"]),
       pos=st.integers(0, 10_000), bit=st.integers(0, 7),
       alg=st.sampled_from(sorted(DEVICES)))
def test_any_flipped_bit_is_refused(field: str, pos: int, bit: int, alg: str) -> None:
    d, key = DEVICES[alg]
    raw = signed(d)
    a = parse_assertion(raw)
    data = bytearray(getattr(a, field))
    data[pos % len(data)] ^= 1 << bit
    changed = StoredAssertion(**{**{f: getattr(a, f) for f in StoredAssertion.__slots__},
                                 field: bytes(data)})
    with pytest.raises(AssertionInvalid):
        verify_assertion(changed, public_key=load_cose_key(key), expected_challenge=CHALLENGE,
                         expected_rp_id=RP_ID, expected_origins=(ORIGIN,))
    # The wallet's offline check (the vault's own approvals use the same) refuses it too.
    assert wallet_reason({**raw, field: b64url_encode(bytes(data))}, key) is not None


def test_canonical_keys_load_as_py_webauthn_loads_them() -> None:
    """The short path for CTAP2-canonical keys gives the very key the general one does."""
    from cryptography.hazmat.primitives import serialization
    from webauthn.helpers import decode_credential_public_key, decoded_public_key_to_cryptography

    from clients.auditor.assertion import _canonical_key

    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    for cose in (ES_KEY, ED_KEY, device("ES256")[1], device("EdDSA")[1]):
        fast = _canonical_key(cose)
        assert fast is not None
        general = decoded_public_key_to_cryptography(decode_credential_public_key(cose))
        assert fast.key.public_bytes(*spki) == general.public_bytes(*spki)
    # Another key order is still a valid COSE key: it takes the general path.
    x, y = ES_KEY[10:42], ES_KEY[45:77]
    reordered = cbor({3: -7, 1: 2, -1: 1, -2: x, -3: y})
    assert _canonical_key(reordered) is None
    assert check(signed(), reordered) > 0
    off_curve = ES_KEY[:45] + bytes(32)
    with pytest.raises(AssertionInvalid) as caught:
        load_cose_key(off_curve)
    assert caught.value.reason == "malformed"
