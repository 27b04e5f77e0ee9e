"""A software passkey authenticator, for the demo, the benchmarks and tests (never for real
citizens: its keys live in memory, in the vault's own process).

It answers `navigator.credentials.create()` and `.get()` options the way a browser and
a platform authenticator together would, in the JSON shape browsers send
(`PublicKeyCredential.toJSON()`), and it can be told to misbehave: no user verification,
another origin, another RP ID, a counter of its choosing, a signature by another key.

Layouts (WebAuthn L3):
- authenticator data (§6.1): rpIdHash (32) || flags (1) || signCount (4, big-endian)
  || [attested credential data: aaguid (16) || idLength (2) || credentialId || COSE key]
- attestation object (§6.5): CBOR map {"fmt": "none", "attStmt": {}, "authData": ...}
- client data (§5.8.1): JSON {"type", "challenge" (base64url), "origin", "crossOrigin"}
- assertion signature (§6.3.3): over authenticatorData || SHA-256(clientDataJSON);
  ES256 as DER (§6.5.5), EdDSA raw, RS256 as RSASSA-PKCS1-v1_5 with SHA-256 (RFC 8812)
  under a 2048-bit key, as a Windows Hello TPM makes them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vault.services.approvals import ApprovalProof

__all__ = ["Alg", "SoftAuthenticator", "SoftCredential", "b64url", "cbor", "unb64url"]

Alg = Literal["ES256", "EdDSA", "RS256"]
PrivateKey = ec.EllipticCurvePrivateKey | Ed25519PrivateKey | rsa.RSAPrivateKey

FLAG_UP, FLAG_UV, FLAG_AT = 0x01, 0x04, 0x40


# -- encodings -------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _head(major: int, n: int) -> bytes:
    """A CBOR initial byte and argument (RFC 8949 §3): the shortest form."""
    if n < 24:
        return bytes([major << 5 | n])
    for extra, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes([major << 5 | extra]) + n.to_bytes(size, "big")
    raise ValueError("integer too large for CBOR")


def cbor(value: int | bytes | str | Mapping[Any, Any]) -> bytes:
    """The CBOR (RFC 8949) of ints, byte and text strings and maps: all WebAuthn needs."""
    if isinstance(value, bool):
        raise TypeError("booleans are not needed here")
    if isinstance(value, int):
        return _head(0, value) if value >= 0 else _head(1, -1 - value)
    if isinstance(value, bytes):
        return _head(2, len(value)) + value
    if isinstance(value, str):
        data = value.encode("utf-8")
        return _head(3, len(data)) + data
    if isinstance(value, Mapping):
        return _head(5, len(value)) + b"".join(cbor(k) + cbor(v) for k, v in value.items())
    raise TypeError(f"cannot encode {type(value).__name__} as CBOR")


# -- credentials -----------------------------------------------------------------------


def _new_key(alg: Alg) -> PrivateKey:
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return Ed25519PrivateKey.generate()


def _unsigned(n: int) -> bytes:
    """A big-endian unsigned integer in as few bytes as it needs (RFC 8230 §4)."""
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


def cose_key(key: PrivateKey) -> bytes:
    """The COSE_Key of the public half (RFC 9052 §7, RFC 9053 §7.1-7.2, RFC 8230 §4)."""
    if isinstance(key, rsa.RSAPrivateKey):
        rsa_numbers = key.public_key().public_numbers()
        # kty RSA (3), alg RS256 (-257), n, e
        return cbor({1: 3, 3: -257, -1: _unsigned(rsa_numbers.n),
                     -2: _unsigned(rsa_numbers.e)})
    if isinstance(key, ec.EllipticCurvePrivateKey):
        numbers = key.public_key().public_numbers()
        # kty EC2 (2), alg ES256 (-7), crv P-256 (1), x, y
        return cbor({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"),
                     -3: numbers.y.to_bytes(32, "big")})
    raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    return cbor({1: 1, 3: -8, -1: 6, -2: raw})  # kty OKP, alg EdDSA, crv Ed25519, x


def _sign(key: PrivateKey, data: bytes) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return key.sign(data)


@dataclass
class SoftCredential:
    credential_id: bytes
    key: PrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int = 0

    @property
    def id(self) -> str:
        return b64url(self.credential_id)

    @property
    def public_key(self) -> bytes:
        return cose_key(self.key)


# -- the authenticator -----------------------------------------------------------------


@dataclass
class SoftAuthenticator:
    """A platform authenticator with discoverable credentials, seen through a browser
    at `origin`. `counts=False` makes a device whose counter always stays 0."""

    origin: str = "http://localhost:8000"
    alg: Alg = "ES256"
    counts: bool = True
    credentials: dict[str, SoftCredential] = field(default_factory=dict)

    def _client_data(self, kind: str, challenge: bytes | str, origin: str | None,
                     cross_origin: bool) -> bytes:
        text = challenge if isinstance(challenge, str) else b64url(challenge)
        data = {"type": kind, "challenge": text, "origin": origin or self.origin,
                "crossOrigin": cross_origin}
        return json.dumps(data, separators=(",", ":")).encode("utf-8")

    @staticmethod
    def _flags(*, up: bool, uv: bool, attested: bool = False) -> int:
        return (FLAG_UP if up else 0) | (FLAG_UV if uv else 0) | (FLAG_AT if attested else 0)

    def create(
        self, options: Mapping[str, Any], *, uv: bool = True, up: bool = True,
        origin: str | None = None, rp_id: str | None = None, cross_origin: bool = False,
        client_type: str = "webauthn.create",
    ) -> dict[str, Any]:
        """Answer registration options (as `registration_options` returns them)."""
        real_rp = options["rp"]["id"]
        cred = SoftCredential(secrets.token_bytes(16), _new_key(self.alg), real_rp,
                              unb64url(options["user"]["id"]))
        count = 0
        auth_data = (
            hashlib.sha256((rp_id or real_rp).encode()).digest()
            + bytes([self._flags(up=up, uv=uv, attested=True)])
            + count.to_bytes(4, "big")
            + bytes(16)  # AAGUID: all zero, as with "none" attestation
            + len(cred.credential_id).to_bytes(2, "big") + cred.credential_id
            + cred.public_key
        )
        attestation = cbor({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = self._client_data(client_type, options["challenge"], origin,
                                        cross_origin)
        self.credentials[cred.id] = cred
        return {
            "id": cred.id, "rawId": cred.id, "type": "public-key",
            "response": {"clientDataJSON": b64url(client_data),
                         "attestationObject": b64url(attestation),
                         "transports": ["internal", "hybrid"]},
            "authenticatorAttachment": "platform", "clientExtensionResults": {},
        }

    def _pick(self, credential_id: str | None, allow: list[str]) -> SoftCredential:
        if credential_id is not None:
            return self.credentials[credential_id]
        for cid in allow:
            if cid in self.credentials:
                return self.credentials[cid]
        if allow or not self.credentials:
            raise LookupError("no matching credential on this authenticator")
        return list(self.credentials.values())[-1]  # discoverable: the newest one

    def get(
        self, options: Mapping[str, Any] | None = None, *, challenge: bytes | None = None,
        credential_id: str | None = None, uv: bool = True, up: bool = True,
        origin: str | None = None, rp_id: str | None = None, counter: int | None = None,
        wrong_key: bool = False, cross_origin: bool = False,
        client_type: str = "webauthn.get",
    ) -> dict[str, Any]:
        """Answer authentication options, or sign `challenge` (for approvals).

        `counter` sets the signature counter (it may go backwards); otherwise it goes
        up by one, or stays 0 if the device does not count.
        """
        allow = [c["id"] for c in (options or {}).get("allowCredentials", [])]
        cred = self._pick(credential_id, allow)
        if counter is not None:
            cred.sign_count = counter
        elif self.counts:
            cred.sign_count += 1
        chal: bytes | str = challenge if challenge is not None else (options or {})["challenge"]
        auth_data = (hashlib.sha256((rp_id or cred.rp_id).encode()).digest()
                     + bytes([self._flags(up=up, uv=uv)])
                     + cred.sign_count.to_bytes(4, "big"))
        client_data = self._client_data(client_type, chal, origin, cross_origin)
        key = _new_key(self.alg) if wrong_key else cred.key
        signature = _sign(key, auth_data + hashlib.sha256(client_data).digest())
        return {
            "id": cred.id, "rawId": cred.id, "type": "public-key",
            "response": {"clientDataJSON": b64url(client_data),
                         "authenticatorData": b64url(auth_data),
                         "signature": b64url(signature),
                         "userHandle": b64url(cred.user_handle)},
            "authenticatorAttachment": "platform", "clientExtensionResults": {},
        }

    def proof(self, *, challenge: bytes, credential_id: str | None = None,
              **knobs: Any) -> ApprovalProof:
        """An approval: an assertion over `challenge`, as the vault records it."""
        answer = self.get(challenge=challenge, credential_id=credential_id, **knobs)
        r = answer["response"]
        return ApprovalProof(credential_id=answer["id"], authenticator_data=r["authenticatorData"],
                             client_data_json=r["clientDataJSON"], signature=r["signature"])
