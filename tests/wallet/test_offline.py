"""The auditor's check of an approval, from ledger data alone: any changed bit fails."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from vault.services.approvals import ApprovalProof
from wallet.passkeys.offline import AssertionRejected, b64url_decode, verify_approval_offline
from wallet.passkeys.software import Alg, SoftAuthenticator, b64url, cbor, unb64url

ORIGIN = "https://vault.example.gov.uk"
RP_ID = "vault.example.gov.uk"
CHALLENGE = hashlib.sha256(b"terms").digest()
REPO = Path(__file__).resolve().parents[2]


def signed(alg: Alg = "ES256", **knobs: object) -> tuple[bytes, ApprovalProof]:
    """A registered credential's COSE key and an approval proof by it."""
    device = SoftAuthenticator(origin=ORIGIN, alg=alg)
    device.create({"rp": {"id": RP_ID}, "user": {"id": b64url(b"cit_1")},
                   "challenge": b64url(b"\x00" * 32)})
    [cred] = device.credentials.values()
    return cred.public_key, device.proof(challenge=CHALLENGE, **knobs)


def check(key: bytes, proof: ApprovalProof, *, challenge: bytes = CHALLENGE,
          rp_id: str = RP_ID, origins: tuple[str, ...] = (ORIGIN,)) -> None:
    verify_approval_offline(public_key_cose=key, challenge=challenge, proof=proof,
                            rp_id=rp_id, origins=list(origins))


def reason_of(key: bytes, proof: ApprovalProof, **kw: object) -> str:
    with pytest.raises(AssertionRejected) as exc:
        check(key, proof, **kw)  # type: ignore[arg-type]
    return exc.value.reason


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "RS256"])
def test_a_good_approval_verifies(alg: Alg) -> None:
    key, proof = signed(alg)
    check(key, proof)
    check(key, proof, origins=("https://other.example.gov.uk", ORIGIN))


def flips(data: bytes) -> list[bytes]:
    """`data` with each of its bits flipped in turn."""
    return [data[:i] + bytes([data[i] ^ (1 << b)]) + data[i + 1:]
            for i in range(len(data)) for b in range(8)]


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "RS256"])
@pytest.mark.parametrize("field", ["authenticator_data", "client_data_json", "signature"])
def test_every_flipped_bit_is_refused(alg: Alg, field: str) -> None:
    key, proof = signed(alg)
    original = unb64url(getattr(proof, field))
    refused = 0
    for damaged in flips(original):
        with pytest.raises(AssertionRejected):
            check(key, replace(proof, **{field: b64url(damaged)}))
        refused += 1
    assert refused == 8 * len(original) > 0


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_every_flipped_bit_of_the_key_is_refused(alg: Alg) -> None:
    key, proof = signed(alg)
    for damaged in flips(key):
        with pytest.raises(AssertionRejected):
            check(damaged, proof)


def resigned(alg: Alg, sign: Callable[[rsa.RSAPrivateKey, bytes], bytes]
             ) -> tuple[bytes, ApprovalProof]:
    """An RS256 credential's key and a proof whose signature `sign` made over the right
    bytes with the right key, some other way."""
    device = SoftAuthenticator(origin=ORIGIN, alg=alg)
    device.create({"rp": {"id": RP_ID}, "user": {"id": b64url(b"cit_1")},
                   "challenge": b64url(b"\x00" * 32)})
    [cred] = device.credentials.values()
    assert isinstance(cred.key, rsa.RSAPrivateKey)
    proof = device.proof(challenge=CHALLENGE)
    signed_bytes = unb64url(proof.authenticator_data) + hashlib.sha256(
        unb64url(proof.client_data_json)).digest()
    return cred.public_key, replace(proof, signature=b64url(sign(cred.key, signed_bytes)))


def test_rs256_is_pkcs1_v1_5_with_sha256_and_nothing_else() -> None:
    """RFC 8812 §2 (what WebAuthn means by RS256): a PSS signature, or PKCS#1 v1.5 over
    another hash, by the very same key over the very same bytes, is refused."""
    key, good = resigned("RS256", lambda k, d: k.sign(d, padding.PKCS1v15(), hashes.SHA256()))
    check(key, good)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)
    for sign in (lambda k, d: k.sign(d, pss, hashes.SHA256()),
                 lambda k, d: k.sign(d, padding.PKCS1v15(), hashes.SHA384()),
                 lambda k, d: k.sign(d, padding.PKCS1v15(), hashes.SHA1())):
        _, bad = resigned("RS256", sign)
        assert reason_of(key, replace(bad, authenticator_data=good.authenticator_data,
                                      client_data_json=good.client_data_json)) \
            == "bad_signature"


def test_another_challenge_is_refused() -> None:
    key, proof = signed()
    assert reason_of(key, proof, challenge=hashlib.sha256(b"other").digest()) \
        == "challenge_mismatch"
    assert reason_of(key, proof, challenge=CHALLENGE[:16]) == "challenge_mismatch"


def test_another_key_is_refused() -> None:
    _, proof = signed()
    other_key, _ = signed()
    assert reason_of(other_key, proof) == "bad_signature"


@pytest.mark.parametrize(("knobs", "expect", "reason"), [
    ({"uv": False}, {}, "user_not_verified"),
    ({"up": False}, {}, "user_not_present"),
    ({}, {"rp_id": "example.gov.uk"}, "wrong_rp_id"),
    ({}, {"origins": ("https://vault.example.gov.uk:8443",)}, "wrong_origin"),
    ({}, {"origins": ()}, "wrong_origin"),
    ({"client_type": "webauthn.create"}, {}, "wrong_type"),
    ({"cross_origin": True}, {}, "cross_origin"),
    ({"wrong_key": True}, {}, "bad_signature"),
])
def test_refusals_name_their_reason(knobs: dict[str, object], expect: dict[str, object],
                                    reason: str) -> None:
    key, proof = signed(**knobs)
    assert reason_of(key, proof, **expect) == reason


@pytest.mark.parametrize("field", ["authenticator_data", "client_data_json", "signature"])
def test_padded_base64_is_refused(field: str) -> None:
    key, proof = signed()
    text = getattr(proof, field)
    padded = text + "=" * (-len(text) % 4 or 4)
    assert reason_of(key, replace(proof, **{field: padded})) == "malformed"


@pytest.mark.parametrize("text", [
    "AB",      # the unused low bits are not zero: "AA" is the one spelling of b"\x00"
    "AAB",     # likewise for two bytes
    "A",       # no whole byte
    "AA==",    # padding
    "+/8",     # the standard alphabet, not the URL-safe one
    "AA AA",   # whitespace
    "AA\n",
])
def test_only_canonical_base64url_is_read(text: str) -> None:
    with pytest.raises(AssertionRejected) as exc:
        b64url_decode(text, what="x")
    assert exc.value.reason == "malformed"
    assert b64url_decode("AA", what="x") == b"\x00"
    assert b64url_decode("", what="x") == b""


def test_client_data_must_be_a_json_object_with_strings() -> None:
    key, proof = signed()
    for data in (b"[]", b'{"type":"webauthn.get"}', b"\xff",
                 json.dumps({"type": "webauthn.get", "challenge": 1, "origin": ORIGIN}).encode()):
        assert reason_of(key, replace(proof, client_data_json=b64url(data))) == "malformed"


def rsa_cose(alg: int = -257, bits: int = 2048, e: int = 65537) -> bytes:
    n = rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key() \
        .public_numbers().n
    return cbor({1: 3, 3: alg, -1: n.to_bytes((n.bit_length() + 7) // 8, "big"),
                 -2: e.to_bytes((e.bit_length() + 7) // 8, "big")})


def test_only_es256_on_p256_ed25519_and_rs256_on_rsa_keys_are_accepted() -> None:
    _, proof = signed()
    for cose in (rsa_cose(alg=-37), rsa_cose(alg=-258), rsa_cose(alg=-7),  # PS256, RS384
                 rsa_cose(bits=1024), rsa_cose(e=2**64 + 1)):
        assert reason_of(cose, proof) == "unsupported_algorithm"
    p256 = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
    rs256_on_p256 = cbor({1: 2, 3: -257, -1: 1, -2: p256.x.to_bytes(32, "big"),
                          -3: p256.y.to_bytes(32, "big")})
    assert reason_of(rs256_on_p256, proof) == "unsupported_algorithm"
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key().public_numbers()
    es384 = cbor({1: 2, 3: -35, -1: 2, -2: p384.x.to_bytes(48, "big"),
                  -3: p384.y.to_bytes(48, "big")})
    assert reason_of(es384, proof) == "unsupported_algorithm"
    raw_point = b"\x04" + bytes(64)  # not COSE at all
    assert reason_of(raw_point, proof) == "malformed"
    assert reason_of(b"", proof) == "malformed"


def test_the_offline_check_loads_nothing_from_the_vault() -> None:
    """An auditor imports it without the vault: neither the module nor its package
    may import `vault` (the package's names load lazily)."""
    code = ("import sys, wallet.passkeys.offline as m; "
            "print(sorted(n for n in sys.modules if n == 'vault' or n.startswith('vault.')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
