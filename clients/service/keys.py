"""The service's own key: a P-256 private key that signs its client assertions (ES256).

The vault knows the service by the public half (`public_jwk()`), registered by the
operator; the private half never leaves the service. Keys load from a PEM (PKCS#8 or
SEC 1), a private JWK, or a file holding either; a new key (`generate()`) is kept with
`save(path)`.

An issuer signs the records it writes with the same key (`sign_record`, ARCHITECTURE §8):
the vault keeps the JWS as written, so any reader can check it against the service's
JWKS (`public_jwks()`, which the operator registers and the vault serves at
`/services/{client_id}/jwks`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

__all__ = ["RECORD_TYP", "ServiceKey", "b64url", "b64url_decode"]

_COORDINATE = 32  # bytes in a P-256 coordinate, scalar, and each half of an ES256 signature
#: The JWS `typ` of a signed record (ARCHITECTURE §8): never mistaken for another JWT.
RECORD_TYP = "record+jwt"


def b64url(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """The bytes of unpadded base64url text; ValueError if it is not that."""
    if not isinstance(text, str) or "=" in text:
        raise ValueError("not unpadded base64url text")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64url(raw) != text:  # refuses non-canonical trailing bits and stray characters
        raise ValueError("not canonical base64url text")
    return raw


def _int(jwk: Mapping[str, Any], name: str) -> int:
    value = jwk.get(name)
    if not isinstance(value, str):
        raise ValueError(f"the JWK has no '{name}'")
    raw = b64url_decode(value)
    if len(raw) != _COORDINATE:
        raise ValueError(f"the JWK's '{name}' is not {_COORDINATE} bytes")
    return int.from_bytes(raw, "big")


class ServiceKey:
    """An EC P-256 private key and an optional key id (`kid`, sent in JWS headers)."""

    __slots__ = ("_key", "kid")

    def __init__(self, key: ec.EllipticCurvePrivateKey, *, kid: str | None = None) -> None:
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(
                key.curve, ec.SECP256R1):
            raise ValueError("the service key must be an EC P-256 private key (ES256)")
        self._key = key
        self.kid = kid

    def __repr__(self) -> str:  # never the private scalar
        return f"ServiceKey(x={self.public_jwk()['x'][:8]}..., kid={self.kid!r})"

    @classmethod
    def generate(cls, *, kid: str | None = None) -> ServiceKey:
        """A new random key (register its `public_jwk()` with the vault)."""
        return cls(ec.generate_private_key(ec.SECP256R1()), kid=kid)

    @classmethod
    def from_pem(cls, pem: bytes | str, *, password: bytes | None = None,
                 kid: str | None = None) -> ServiceKey:
        """A PEM private key: PKCS#8 (`BEGIN PRIVATE KEY`) or SEC 1 (`BEGIN EC PRIVATE KEY`)."""
        data = pem.encode("ascii") if isinstance(pem, str) else pem
        try:
            key = serialization.load_pem_private_key(data, password=password)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise ValueError(f"not a usable PEM private key: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the service key must be an EC P-256 private key (ES256)")
        return cls(key, kid=kid)

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any]) -> ServiceKey:
        """A private JWK: `{"kty": "EC", "crv": "P-256", "x", "y", "d"}` (and `kid`)."""
        if not isinstance(jwk, Mapping) or jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
            raise ValueError("the JWK must be an EC key on P-256")
        if "d" not in jwk:
            raise ValueError("the JWK is a public key; the service needs its private key ('d')")
        kid = jwk.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise ValueError("the JWK's kid must be text")
        public = ec.EllipticCurvePublicNumbers(_int(jwk, "x"), _int(jwk, "y"), ec.SECP256R1())
        try:
            key = ec.EllipticCurvePrivateNumbers(_int(jwk, "d"), public).private_key()
        except ValueError:
            raise ValueError("the JWK's d does not belong to its x and y") from None
        return cls(key, kid=kid)

    @classmethod
    def from_file(cls, path: str | Path, *, password: bytes | None = None) -> ServiceKey:
        """A file holding a PEM private key or a private JWK (JSON)."""
        data = Path(path).read_bytes()
        if data.lstrip().startswith(b"{"):
            return cls.from_jwk(json.loads(data))
        return cls.from_pem(data, password=password)

    def private_pem(self, *, password: bytes | None = None) -> bytes:
        """The private key as PKCS#8 PEM (encrypted with `password` if given)."""
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password) if password
            else serialization.NoEncryption())
        return self._key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8, encryption)

    def save(self, path: str | Path, *, password: bytes | None = None) -> Path:
        """Write the private key (`private_pem`) to a new file that only its owner can
        read or write (0600, whatever the umask). An existing file is never replaced
        (FileExistsError): losing a registered key means registering the service again."""
        target = Path(path)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(fd, 0o600)  # the umask may have narrowed it further, never widened
            with os.fdopen(fd, "wb", closefd=False) as f:
                f.write(self.private_pem(password=password))
        finally:
            os.close(fd)
        return target

    def public_jwk(self) -> dict[str, str]:
        """The public JWK the operator registers for the service (never holds `d`)."""
        n = self._key.public_key().public_numbers()
        jwk = {"kty": "EC", "crv": "P-256", "x": b64url(n.x.to_bytes(_COORDINATE, "big")),
               "y": b64url(n.y.to_bytes(_COORDINATE, "big"))}
        if self.kid is not None:
            jwk["kid"] = self.kid
        return jwk

    def thumbprint(self) -> str:
        """The RFC 7638 thumbprint of the public key (SHA-256, base64url): the key id used
        when the key has no `kid` of its own, as the vault does for such a key."""
        jwk = self.public_jwk()
        # RFC 7638 §3.2: the required members only, in lexicographic order, no whitespace.
        members = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
        canonical = json.dumps(members, sort_keys=True, separators=(",", ":"))
        return b64url(hashlib.sha256(canonical.encode("ascii")).digest())

    @property
    def key_id(self) -> str:
        """The `kid` this key signs records with: its own, else its thumbprint."""
        return self.kid if self.kid is not None else self.thumbprint()

    def public_jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public JWK Set (RFC 7517 §5) to register (`vault service add --jwks-file`):
        this key, with its `key_id` as `kid`. To rotate, register a set holding the old
        and the new key's `public_jwks()["keys"]` until the old one is retired."""
        jwk = {**self.public_jwk(), "kid": self.key_id, "use": "sig", "alg": "ES256"}
        return {"keys": [jwk]}

    def _sign(self, header: Mapping[str, Any], claims: Mapping[str, Any]) -> str:
        signing_input = ".".join(
            b64url(json.dumps(dict(part), separators=(",", ":"), allow_nan=False)
                   .encode("utf-8"))
            for part in (header, claims))
        der = self._key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)  # RFC 7518 §3.4: R || S, fixed width, not DER
        signature = r.to_bytes(_COORDINATE, "big") + s.to_bytes(_COORDINATE, "big")
        return f"{signing_input}.{b64url(signature)}"

    def sign_jwt(self, claims: Mapping[str, Any]) -> str:
        """A compact JWS (RFC 7515) of `claims`, ES256, header `{"alg","typ":"JWT","kid"?}`."""
        header: dict[str, str] = {"alg": "ES256", "typ": "JWT"}
        if self.kid is not None:
            header["kid"] = self.kid
        return self._sign(header, claims)

    def sign_record(self, category: str, value: Any, *, issuer: str,
                    jti: str | None = None, iat: int | None = None,
                    exp: int | None = None) -> str:
        """A record as an issuer writes it (ARCHITECTURE §8): a compact JWS, ES256, header
        `{"alg":"ES256","typ":"record+jwt","kid"}`, payload `{"iss": issuer, "category",
        "value", "iat", "jti"}` and `exp` when given.

        `value` is any JSON value but None: what the category's schema takes (an
        object, a string such as a date of birth, a list). `issuer` is the service's
        client_id; `jti` is random unless given (the vault
        treats a second JWS with a used jti as a conflict, the same JWS as a repeat);
        `iat` is now unless given. No citizen is named: the vault binds the record to
        the citizen of the write grant it is sent under.
        """
        if not isinstance(category, str) or not category:
            raise ValueError("the category must be a non-empty string")
        if not isinstance(issuer, str) or not issuer:
            raise ValueError("the issuer must be the service's client_id")
        if value is None:
            raise TypeError("a record has a value (to take one away, withdraw the record)")
        now = int(time.time()) if iat is None else iat
        for name, stamp in (("iat", now), ("exp", exp)):
            if stamp is not None and (isinstance(stamp, bool) or not isinstance(stamp, int)):
                raise TypeError(f"{name} must be whole seconds since the epoch")
        claims: dict[str, Any] = {
            "iss": issuer, "category": category,
            "value": dict(value) if isinstance(value, Mapping) else value, "iat": now,
            "jti": secrets.token_urlsafe(16) if jti is None else jti}
        if exp is not None:
            claims["exp"] = exp
        header = {"alg": "ES256", "typ": RECORD_TYP, "kid": self.key_id}
        return self._sign(header, claims)
