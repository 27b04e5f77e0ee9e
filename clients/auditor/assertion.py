"""The auditor's own check of a passkey assertion recorded on the ledger (WebAuthn L3 §7.2).

A `grant.approved` entry (and a citizen's pause, resume or revoke) carries the WebAuthn
assertion that proves the citizen said so; the citizen's earlier `passkey.registered`
entry carries the COSE public key. `verify_assertion` checks one against the other
with nothing but those bytes, written here rather than borrowed from the wallet, so that
an auditor trusts no code of the vault it audits (py_webauthn decodes the COSE key;
`cryptography` checks the signature).

The §7.2 steps that apply offline, in the order checked:
- step 11-13: the client data is JSON of type ``webauthn.get``, its challenge is the
  expected one, its origin an allowed one, and it was not made in another site's frame
  (``crossOrigin`` true or a ``topOrigin``, §5.8.1);
- step 15: rpIdHash is SHA-256 of the RP ID;
- steps 16-17: the user-present and user-verified flags (the vault requires both);
- step 21: the signature over authenticatorData || SHA-256(clientDataJSON), ES256 (DER),
  EdDSA or RS256 (RSASSA-PKCS1-v1_5 with SHA-256, RFC 8812 §2; never PSS), the
  algorithms the vault accepts.
Steps that need the live ceremony (allowCredentials, userHandle against a session,
extensions) do not apply to a recorded approval; the caller picks the key by credential
id and subject, and keeps sign counts across assertions (step 22) if it wants them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from clients.auditor.fetch import AuditorError

__all__ = [
    "EDDSA",
    "ES256",
    "RS256",
    "RSA_BITS",
    "AssertionInvalid",
    "AssertionVerified",
    "CoseKey",
    "StoredAssertion",
    "b64url_decode",
    "b64url_encode",
    "check_assertion",
    "load_cose_key",
    "parse_assertion",
    "signed_data",
    "verify_assertion",
    "verify_signature",
]

#: COSE algorithm identifiers the vault accepts (RFC 9053 §2.1, RFC 8037 §2, RFC 8812 §2).
ES256 = -7
EDDSA = -8
RS256 = -257
#: RSA moduli the vault accepts, in bits (and public exponents of at most 32 bits): at
#: least 2048, and small enough that no key makes every check of it slow.
RSA_BITS = (2048, 4096)
_RSA_MAX_EXPONENT_BITS = 32

_FLAG_UP = 0x01  # user present (WebAuthn L3 §6.1)
_FLAG_UV = 0x04  # user verified
_HEADER = 37  # rpIdHash (32) || flags (1) || signCount (4, big-endian)
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_FIELDS = ("credential_id", "authenticator_data", "client_data_json", "signature")
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_PKCS1V15 = padding.PKCS1v15()


class AssertionInvalid(AuditorError):
    """The assertion fails a check: `reason` names which, the message explains.

    Reasons: malformed, unsupported_algorithm, wrong_type, challenge_mismatch,
    wrong_origin, cross_origin, wrong_rp_id, user_not_present, user_not_verified,
    bad_signature (the same words the wallet uses when it refuses a passkey).
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def b64url_encode(data: bytes) -> str:
    """base64url without padding, as WebAuthn's JSON forms and the ledger write it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: Any, *, what: str) -> bytes:
    """Strict base64url: no padding, no other characters, one spelling per value."""
    if type(text) is not str or len(text) % 4 == 1 or not _B64URL.fullmatch(text):
        raise AssertionInvalid("malformed", f"{what} is not base64url text")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise AssertionInvalid("malformed", f"{what} is not base64url text") from None
    if b64url_encode(data) != text:  # spare low bits set: another spelling of the bytes
        raise AssertionInvalid("malformed", f"{what} is not canonical base64url")
    return data


@dataclass(frozen=True, slots=True)
class StoredAssertion:
    """An assertion as the ledger stores it, decoded (`credential_id` stays text: it is
    how `passkey.registered` names the passkey)."""

    credential_id: str
    authenticator_data: bytes
    client_data_json: bytes
    signature: bytes


def parse_assertion(value: Any) -> StoredAssertion:
    """The ledger's ``{credential_id, authenticator_data, client_data_json, signature}``
    (each base64url); AssertionInvalid('malformed') if it is anything else."""
    if type(value) is not dict or not all(type(value.get(k)) is str for k in _FIELDS):
        raise AssertionInvalid("malformed", "the assertion needs credential_id, "
                                            "authenticator_data, client_data_json and "
                                            "signature, each base64url text")
    b64url_decode(value["credential_id"], what="the credential id")
    return StoredAssertion(
        value["credential_id"],
        b64url_decode(value["authenticator_data"], what="the authenticator data"),
        b64url_decode(value["client_data_json"], what="the client data"),
        b64url_decode(value["signature"], what="the signature"))


@dataclass(frozen=True, slots=True)
class CoseKey:
    """A registered passkey's public key, loaded once (loading costs more than using)."""

    alg: int
    key: ec.EllipticCurvePublicKey | Ed25519PublicKey | rsa.RSAPublicKey


# The two keys the vault accepts, as authenticators encode them (CTAP2 canonical CBOR:
# keys 1 kty, 3 alg, -1 crv, -2 x, -3 y in that order): map headers and labels around
# the 32-byte coordinates. Anything else takes the general path through py_webauthn.
_ES256_HEAD = bytes.fromhex("a5010203262001215820")  # {1: 2 EC2, 3: -7, -1: 1 P-256, -2: x
_ES256_MID = bytes.fromhex("225820")  # -3: y}
_EDDSA_HEAD = bytes.fromhex("a4010103272006215820")  # {1: 1 OKP, 3: -8, -1: 6 Ed25519, -2: x}


def _canonical_key(cose: bytes) -> CoseKey | None:
    """The key of a canonically encoded ES256 or EdDSA COSE key, or None if it is not one
    (loading it this way costs a fifth of the general way)."""
    try:
        if len(cose) == 77 and cose[:10] == _ES256_HEAD and cose[42:45] == _ES256_MID:
            point = b"\x04" + cose[10:42] + cose[45:77]
            return CoseKey(ES256, ec.EllipticCurvePublicKey.from_encoded_point(
                ec.SECP256R1(), point))
        if len(cose) == 42 and cose[:10] == _EDDSA_HEAD:
            return CoseKey(EDDSA, Ed25519PublicKey.from_public_bytes(cose[10:]))
    except ValueError:  # not a point on the curve
        raise AssertionInvalid("malformed", "the public key is not a valid COSE key") from None
    return None


@lru_cache(maxsize=4096)
def load_cose_key(cose: bytes) -> CoseKey:
    """The COSE_Key's algorithm and key: ES256 on P-256, EdDSA on Ed25519, or RS256 on
    an RSA key of 2048 to 4096 bits, only (the algorithm, not the key type, decides how
    a signature is checked, so PS256 on the same RSA key is refused)."""
    # A COSE key is a CBOR map (major type 5); py_webauthn would also take a bare
    # uncompressed point, which the ledger never holds.
    if not cose or cose[0] >> 5 != 5:
        raise AssertionInvalid("malformed", "the public key is not a COSE key")
    found = _canonical_key(cose)
    if found is not None:
        return found
    # Other encodings are rare: py_webauthn (and its imports) only when one comes.
    from webauthn.helpers import (
        decode_credential_public_key,
        decoded_public_key_to_cryptography,
    )
    try:
        decoded = decode_credential_public_key(cose)
        key = decoded_public_key_to_cryptography(decoded)
        alg = int(decoded.alg)
    except Exception:  # any failure to parse untrusted bytes: one clear answer
        raise AssertionInvalid("malformed", "the public key is not a valid COSE key") from None
    if alg == ES256 and isinstance(key, ec.EllipticCurvePublicKey) \
            and isinstance(key.curve, ec.SECP256R1):
        return CoseKey(alg, key)
    if alg == EDDSA and isinstance(key, Ed25519PublicKey):
        return CoseKey(alg, key)
    if alg == RS256 and isinstance(key, rsa.RSAPublicKey):
        if not RSA_BITS[0] <= key.key_size <= RSA_BITS[1] \
                or key.public_numbers().e.bit_length() > _RSA_MAX_EXPONENT_BITS:
            raise AssertionInvalid("unsupported_algorithm",
                                   f"an RS256 key of {key.key_size} bits is not one the "
                                   "vault accepts (2048 to 4096 bits, exponent such as "
                                   "65537)")
        return CoseKey(alg, key)
    raise AssertionInvalid("unsupported_algorithm",
                           f"COSE algorithm {alg} with this key type is not one the vault "
                           "accepts (ES256 on P-256, EdDSA on Ed25519, RS256 on RSA)")


@dataclass(frozen=True, slots=True)
class AssertionVerified:
    credential_id: str
    sign_count: int
    flags: int


@lru_cache(maxsize=64)
def _rp_id_hash(rp_id: str) -> bytes:
    return hashlib.sha256(rp_id.encode("utf-8")).digest()


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _check_client_data(data: bytes, challenge: bytes, origins: Collection[str]) -> None:
    """§7.2 steps 10-13 (and §5.8.1 for crossOrigin and topOrigin)."""
    try:
        c = orjson.loads(data)  # also refuses bytes that are not UTF-8
    except orjson.JSONDecodeError:
        raise AssertionInvalid("malformed", "the client data is not JSON") from None
    if type(c) is not dict or not all(type(c.get(k)) is str
                                      for k in ("type", "challenge", "origin")):
        raise AssertionInvalid("malformed",
                               "the client data needs type, challenge and origin strings")
    if c["type"] != "webauthn.get":
        raise AssertionInvalid("wrong_type", f"the client data is of type "
                                             f"{_short(c['type'])!r}, not 'webauthn.get'")
    # Browsers write the challenge as canonical unpadded base64url; comparing the text
    # compares the bytes and refuses other spellings at once.
    if not hmac.compare_digest(c["challenge"].encode(), b64url_encode(challenge).encode()):
        raise AssertionInvalid("challenge_mismatch",
                               "the passkey signed another challenge than the expected one")
    if c["origin"] not in origins:
        allowed = ", ".join(repr(o) for o in origins) or "no origin at all"
        raise AssertionInvalid("wrong_origin", f"the passkey was used on "
                                               f"{_short(c['origin'])!r}, not on {allowed}")
    if c.get("crossOrigin", False) is not False or "topOrigin" in c:
        raise AssertionInvalid("cross_origin",
                               "the passkey was used inside a frame of another site")


def check_assertion(
    assertion: StoredAssertion,
    *,
    expected_challenge: bytes,
    expected_rp_id: str,
    expected_origins: Collection[str],
) -> AssertionVerified:
    """Every check but the signature (§7.2 steps 11-17): AssertionInvalid unless the
    assertion is over `expected_challenge`, for `expected_rp_id`, made on one of
    `expected_origins`, with the user present and verified. `verify_signature` then
    checks the signature: the two are apart so that signatures can be checked in bulk
    elsewhere (the verifier's worker process)."""
    _check_client_data(assertion.client_data_json, expected_challenge, expected_origins)
    auth = assertion.authenticator_data
    if len(auth) < _HEADER:
        raise AssertionInvalid("malformed", f"the authenticator data is {len(auth)} bytes; "
                                            f"at least {_HEADER} are needed")
    if not hmac.compare_digest(auth[:32], _rp_id_hash(expected_rp_id)):
        raise AssertionInvalid("wrong_rp_id",
                               f"the passkey answered for another site, not {expected_rp_id!r}")
    flags = auth[32]
    if not flags & _FLAG_UP:
        raise AssertionInvalid("user_not_present",
                               "the authenticator did not confirm that someone was there")
    if not flags & _FLAG_UV:
        raise AssertionInvalid("user_not_verified",
                               "the authenticator did not verify the user (no PIN, "
                               "fingerprint or face)")
    return AssertionVerified(assertion.credential_id, int.from_bytes(auth[33:37], "big"), flags)


def signed_data(assertion: StoredAssertion) -> bytes:
    """What the signature covers: authenticatorData || SHA-256(clientDataJSON)."""
    return assertion.authenticator_data + hashlib.sha256(assertion.client_data_json).digest()


def verify_signature(public_key: CoseKey, signed: bytes, signature: bytes) -> None:
    """§7.2 step 21: AssertionInvalid('bad_signature') unless `signature` (ES256 as DER,
    EdDSA, or RS256 as PKCS#1 v1.5 with SHA-256) by `public_key` covers `signed` (see
    `signed_data`)."""
    key = public_key.key
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, signed, _ECDSA_SHA256)
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signed, _PKCS1V15, hashes.SHA256())
        else:
            key.verify(signature, signed)
    except (InvalidSignature, ValueError):
        raise AssertionInvalid("bad_signature", "the signature does not verify under the "
                                                "registered passkey") from None


def verify_assertion(
    assertion: StoredAssertion,
    *,
    public_key: CoseKey,
    expected_challenge: bytes,
    expected_rp_id: str,
    expected_origins: Collection[str],
) -> AssertionVerified:
    """Raise AssertionInvalid unless `assertion` is a user-verified assertion over
    `expected_challenge` for `expected_rp_id`, made on one of `expected_origins`, and
    signed by `public_key`. The caller matched the key to `assertion.credential_id`."""
    done = check_assertion(assertion, expected_challenge=expected_challenge,
                           expected_rp_id=expected_rp_id, expected_origins=expected_origins)
    verify_signature(public_key, signed_data(assertion), assertion.signature)
    return done
