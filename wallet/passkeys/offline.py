"""Checking a passkey assertion with nothing but ledger data (WebAuthn L3 §7.2).

An approval on the ledger (`grant.approved`, a citizen's `grant.revoked`...) carries the
assertion; the citizen's earlier `passkey.registered` entry carries the COSE public key.
`verify_approval_offline` checks one against the other, as an outside auditor would.

This module imports nothing from the vault (only py_webauthn and cryptography), so the
auditor can reuse it; for that reason it raises its own `AssertionRejected`, whose
`reason` takes the same values as `wallet.errors.PasskeyRejected.reason`. The vault's
online checks reuse the parsing and client-data checks here, so a refusal reads the
same whichever side finds it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from webauthn.helpers import decode_credential_public_key, decoded_public_key_to_cryptography

__all__ = [
    "EDDSA",
    "ES256",
    "RS256",
    "RSA_BITS",
    "AssertionFields",
    "AssertionRejected",
    "AuthenticatorData",
    "PublicKey",
    "b64url_decode",
    "b64url_encode",
    "check_authenticator_data",
    "check_client_data",
    "load_public_key",
    "parse_authenticator_data",
    "verify_approval_offline",
    "verify_signature",
]

#: COSE algorithm identifiers the vault accepts (RFC 9053 §2.1, RFC 8037 §2, RFC 8812 §2).
ES256 = -7
EDDSA = -8
RS256 = -257

#: RSA moduli the vault accepts, in bits: at least 2048 (NIST SP 800-131A; what TPMs
#: and Windows Hello make), at most 4096 so that nobody can register a key that is slow
#: for every later check, the auditor's included.
RSA_BITS = (2048, 4096)
# The public exponent bounds the cost of a check too: authenticators use 65537.
_RSA_MAX_EXPONENT_BITS = 32

# Authenticator data flags (WebAuthn L3 §6.1).
FLAG_UP = 0x01
FLAG_UV = 0x04

_HEADER_SIZE = 37  # rpIdHash (32) || flags (1) || signCount (4, big-endian)
_B64URL = re.compile(r"[A-Za-z0-9_-]*")

PublicKey = ec.EllipticCurvePublicKey | Ed25519PublicKey | rsa.RSAPublicKey


class AssertionRejected(Exception):
    """The assertion fails a check; `reason` names it, the message explains it."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class AssertionFields(Protocol):
    """What an approval carries (vault.services.approvals.ApprovalProof fits it)."""

    @property
    def credential_id(self) -> str: ...
    @property
    def authenticator_data(self) -> str: ...
    @property
    def client_data_json(self) -> str: ...
    @property
    def signature(self) -> str: ...


def b64url_encode(data: bytes) -> str:
    """base64url without padding, as WebAuthn's JSON forms use it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: Any, *, what: str) -> bytes:
    """Strict base64url: no padding, no other characters, one encoding per value.

    Strictness keeps the text stored on the ledger the only spelling of its bytes.
    """
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise AssertionRejected("malformed", f"{what} is not base64url text")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise AssertionRejected("malformed", f"{what} is not base64url text") from None
    if b64url_encode(data) != text:  # non-zero trailing bits: another spelling
        raise AssertionRejected("malformed", f"{what} is not canonical base64url")
    return data


@dataclass(frozen=True, slots=True)
class AuthenticatorData:
    """The fixed header of authenticator data (WebAuthn L3 §6.1)."""

    rp_id_hash: bytes
    flags: int
    sign_count: int

    @property
    def user_present(self) -> bool:
        return bool(self.flags & FLAG_UP)

    @property
    def user_verified(self) -> bool:
        return bool(self.flags & FLAG_UV)


def parse_authenticator_data(data: bytes) -> AuthenticatorData:
    if len(data) < _HEADER_SIZE:
        raise AssertionRejected(
            "malformed", f"authenticator data is {len(data)} bytes; at least 37 are needed")
    return AuthenticatorData(data[:32], data[32], int.from_bytes(data[33:37], "big"))


def _rp_id_hash(rp_id: str) -> bytes:
    return hashlib.sha256(rp_id.encode("utf-8")).digest()


def check_authenticator_data(auth: AuthenticatorData, *, rp_id: str) -> None:
    """The RP ID hash, then user presence and user verification (§7.2 steps 15-17)."""
    if not hmac.compare_digest(auth.rp_id_hash, _rp_id_hash(rp_id)):
        raise AssertionRejected(
            "wrong_rp_id", f"the passkey answered for another site, not for {rp_id!r}")
    if not auth.user_present:
        raise AssertionRejected(
            "user_not_present", "the authenticator did not confirm that someone was there")
    if not auth.user_verified:
        raise AssertionRejected(
            "user_not_verified",
            "the authenticator did not check who you are (no PIN, fingerprint or face); "
            "this vault needs that check")


def _shorten(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def check_client_data(
    client_data_json: bytes,
    *,
    expected_type: Literal["webauthn.get", "webauthn.create"],
    expected_challenge: bytes,
    origins: Sequence[str],
) -> None:
    """Type, challenge, origin and not cross-origin (§7.2 steps 10-13, §7.1 steps 7-10)."""
    try:
        data = json.loads(client_data_json.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise AssertionRejected("malformed", "the client data is not JSON") from None
    if not isinstance(data, dict) or not all(
        isinstance(data.get(k), str) for k in ("type", "challenge", "origin")
    ):
        raise AssertionRejected(
            "malformed", "the client data needs type, challenge and origin strings")
    if data["type"] != expected_type:
        raise AssertionRejected(
            "wrong_type",
            f"expected client data of type {expected_type!r}, got {_shorten(data['type'])!r}")
    challenge = b64url_decode(data["challenge"], what="the client data challenge")
    if not hmac.compare_digest(challenge, expected_challenge):
        raise AssertionRejected(
            "challenge_mismatch", "the passkey signed another challenge than the one expected")
    if data["origin"] not in origins:
        allowed = ", ".join(repr(o) for o in origins)
        raise AssertionRejected(
            "wrong_origin",
            f"the passkey was used on {_shorten(data['origin'])!r}, not on {allowed}")
    # WebAuthn L3 §5.8.1: crossOrigin is true (and topOrigin set) inside another site's
    # frame; the wallet never runs in one.
    if data.get("crossOrigin", False) is not False or "topOrigin" in data:
        raise AssertionRejected(
            "cross_origin", "the passkey was used inside a frame of another site")


def load_public_key(public_key_cose: bytes) -> tuple[int, PublicKey]:
    """The COSE key's algorithm and key: ES256 on P-256, EdDSA on Ed25519, or RS256 on
    an RSA key of 2048 to 4096 bits, and nothing else (another algorithm on a right key
    type, PS256 say, is refused: the algorithm decides how the signature is checked)."""
    # A COSE key is a CBOR map (major type 5). py_webauthn would also take a bare
    # 0x04 || x || y point; the ledger always holds COSE, so anything else is refused.
    if not public_key_cose or public_key_cose[0] >> 5 != 5:
        raise AssertionRejected("malformed", "the public key is not a COSE key")
    try:
        decoded = decode_credential_public_key(public_key_cose)
        key = decoded_public_key_to_cryptography(decoded)
        alg = int(decoded.alg)
    except Exception:  # any parse failure of untrusted bytes: one clear answer
        raise AssertionRejected("malformed", "the public key is not a valid COSE key") from None
    if alg == ES256 and isinstance(key, ec.EllipticCurvePublicKey) and isinstance(
        key.curve, ec.SECP256R1
    ):
        return alg, key
    if alg == EDDSA and isinstance(key, Ed25519PublicKey):
        return alg, key
    if alg == RS256 and isinstance(key, rsa.RSAPublicKey):
        if not RSA_BITS[0] <= key.key_size <= RSA_BITS[1] or \
                key.public_numbers().e.bit_length() > _RSA_MAX_EXPONENT_BITS:
            raise AssertionRejected(
                "unsupported_algorithm",
                f"an RS256 key of {key.key_size} bits is not accepted; use 2048 to 4096 "
                "bits with a public exponent such as 65537")
        return alg, key
    raise AssertionRejected(
        "unsupported_algorithm",
        f"COSE algorithm {alg} with this key type is not accepted; "
        "use ES256 (P-256), EdDSA (Ed25519) or RS256 (RSA)")


def verify_signature(
    public_key_cose: bytes, *, authenticator_data: bytes, client_data_json: bytes,
    signature: bytes,
) -> None:
    """The signature over authenticatorData || SHA-256(clientDataJSON) (§7.2 step 21).

    ES256 is ECDSA with SHA-256, DER-encoded (§6.5.5); RS256 is RSASSA-PKCS1-v1_5 with
    SHA-256 (RFC 8812 §2), never PSS; EdDSA is Ed25519.
    """
    _, key = load_public_key(public_key_cose)
    signed = authenticator_data + hashlib.sha256(client_data_json).digest()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, signed, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
        else:
            key.verify(signature, signed)
    except (InvalidSignature, ValueError):
        raise AssertionRejected(
            "bad_signature", "the signature does not verify under the registered passkey"
        ) from None


def verify_approval_offline(
    *,
    public_key_cose: bytes,
    challenge: bytes,
    proof: AssertionFields,
    rp_id: str,
    origins: Sequence[str],
) -> None:
    """Raise `AssertionRejected` unless `proof` is a user-verified assertion over
    `challenge` for `rp_id`, made on one of `origins`, signed by `public_key_cose`.

    The caller picks the key: the one in the `passkey.registered` entry whose
    credential id equals `proof.credential_id`. Sign counters are not checked here:
    one assertion alone says nothing about order.
    """
    authenticator_data = b64url_decode(proof.authenticator_data, what="authenticator data")
    client_data_json = b64url_decode(proof.client_data_json, what="client data")
    signature = b64url_decode(proof.signature, what="the signature")
    check_client_data(client_data_json, expected_type="webauthn.get",
                      expected_challenge=challenge, origins=origins)
    check_authenticator_data(parse_authenticator_data(authenticator_data), rp_id=rp_id)
    verify_signature(public_key_cose, authenticator_data=authenticator_data,
                     client_data_json=client_data_json, signature=signature)
