"""Envelope encryption recipes: seal and open a value under a key, bound to its context.

A sealed blob is ``0x01 || nonce (24 bytes) || ciphertext || tag (16 bytes)``:
XChaCha20-Poly1305-IETF (libsodium, through PyNaCl's `nacl.secret.Aead`) with a random
nonce, which is safe to draw at random at 192 bits. The associated data (AD) is not
stored: the caller rebuilds it from where the blob lives (`record_ad`, `data_key_ad`),
so a blob copied to another record, version, category or citizen does not open there.

The AD encodings are RFC 8785 canonical JSON of a small object with a fixed `use`
label, so they are injective (no field can be shifted into its neighbour, whatever
characters it holds) and a record AD can never equal a data-key AD.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

import nacl.exceptions
from nacl.secret import Aead

from ledger.canonical import MAX_SAFE_INTEGER, encode_checked
from ledger.errors import EncodingError
from vault.crypto.errors import CryptoError, DecryptionFailed

__all__ = [
    "KEY_SIZE",
    "SEAL_VERSION",
    "commit",
    "commitment_key",
    "data_key_ad",
    "new_key",
    "open_sealed",
    "record_ad",
    "record_jws_ad",
    "seal",
]

KEY_SIZE = 32
SEAL_VERSION = 0x01
NONCE_SIZE = Aead.NONCE_SIZE  # 24
TAG_SIZE = Aead.MACBYTES  # 16
OVERHEAD = 1 + NONCE_SIZE + TAG_SIZE  # bytes a sealed blob adds to its plaintext

_VERSION_BYTE = bytes([SEAL_VERSION])
_RECORD_USE = "vault.record.v1"
_RECORD_JWS_USE = "vault.record-jws.v1"
_DATA_KEY_USE = "vault.data-key.v1"
# BLAKE2b personalisation (at most 16 bytes): separates the commitment key from any
# other value derived from the same data key.
_COMMIT_PERSON = b"vault.commit.v1"


def new_key() -> bytes:
    """A fresh random 32-byte key (a citizen data key or a KEK)."""
    return secrets.token_bytes(KEY_SIZE)


def _aead(key: bytes) -> Aead:
    if not isinstance(key, bytes) or len(key) != KEY_SIZE:
        raise CryptoError(f"a key must be {KEY_SIZE} bytes")
    return Aead(key)


def seal(key: bytes, plaintext: bytes, *, ad: bytes) -> bytes:
    """Encrypt `plaintext` under `key`, bound to the associated data `ad`."""
    return _VERSION_BYTE + _aead(key).encrypt(plaintext, ad)


def open_sealed(key: bytes, blob: bytes, *, ad: bytes) -> bytes:
    """The plaintext `seal(key, ..., ad=ad)` produced, or `DecryptionFailed`.

    Every failure (wrong key, wrong AD, a changed, truncated or unknown-version blob,
    something that is not bytes at all) raises the same opaque `DecryptionFailed`.
    """
    if (
        not isinstance(blob, bytes)
        or len(blob) < OVERHEAD
        or blob[0] != SEAL_VERSION
        or not isinstance(key, bytes)
        or len(key) != KEY_SIZE
        or not isinstance(ad, bytes)
    ):
        raise DecryptionFailed
    try:
        # Passing the nonce apart avoids re-slicing inside PyNaCl.
        return Aead(key).decrypt(blob[1 + NONCE_SIZE :], ad, blob[1 : 1 + NONCE_SIZE])
    except nacl.exceptions.CryptoError:
        raise DecryptionFailed from None


def _ad(fields: dict[str, str | int]) -> bytes:
    # The callers checked every value (strings, a safe non-negative integer) and the keys
    # are fixed ASCII names, so the JCS encoder can skip its own walk over the value.
    try:
        return encode_checked(fields, False)
    except EncodingError as exc:
        raise CryptoError(f"cannot encode associated data: {exc}") from None


def _check_strs(**fields: object) -> None:
    for name, value in fields.items():
        if not isinstance(value, str):
            raise CryptoError(f"{name} must be a string, not {type(value).__name__}")


def _record_fields(use: str, citizen_id: str, record_id: str, category: str,
                   version: int) -> bytes:
    if not (
        isinstance(citizen_id, str) and isinstance(record_id, str) and isinstance(category, str)
    ):
        _check_strs(citizen_id=citizen_id, record_id=record_id, category=category)
    if isinstance(version, bool) or not isinstance(version, int):
        raise CryptoError(f"version must be an integer, not {type(version).__name__}")
    if not 0 <= version <= MAX_SAFE_INTEGER:
        raise CryptoError(f"version must be between 0 and {MAX_SAFE_INTEGER}")
    return _ad({"use": use, "citizen": citizen_id, "record": record_id,
                "category": category, "version": version})


def record_ad(*, citizen_id: str, record_id: str, category: str, version: int) -> bytes:
    """The associated data of a record value: its citizen, record, category and version.

    The JCS bytes of ``{"category", "citizen", "record", "use": "vault.record.v1",
    "version"}``. Stored ciphertexts depend on these exact bytes: never change them.
    """
    return _record_fields(_RECORD_USE, citizen_id, record_id, category, version)


def record_jws_ad(*, citizen_id: str, record_id: str, category: str, version: int) -> bytes:
    """The associated data of the issuer's JWS sealed beside a record's value: the same
    fields as `record_ad` under its own `use` ("vault.record-jws.v1"), so the sealed JWS
    and the sealed value of a record can never stand in for one another (never change)."""
    return _record_fields(_RECORD_JWS_USE, citizen_id, record_id, category, version)


def data_key_ad(*, citizen_id: str, kek_id: str) -> bytes:
    """The associated data of a wrapped data key: its citizen and the KEK wrapping it.

    The JCS bytes of ``{"citizen", "kek", "use": "vault.data-key.v1"}`` (never change).
    """
    if not (isinstance(citizen_id, str) and isinstance(kek_id, str)):
        _check_strs(citizen_id=citizen_id, kek_id=kek_id)
    return _ad({"use": _DATA_KEY_USE, "citizen": citizen_id, "kek": kek_id})


def commitment_key(data_key: bytes) -> bytes:
    """A 32-byte key for `commit`, derived one way from the citizen's data key.

    Erasing the data key therefore destroys the commitment key too (crypto-shredding):
    the commitments left on the ledger can no longer be tested against guesses.
    """
    if not isinstance(data_key, bytes) or len(data_key) != KEY_SIZE:
        raise CryptoError(f"a data key must be {KEY_SIZE} bytes")
    return hashlib.blake2b(b"", digest_size=32, key=data_key, person=_COMMIT_PERSON).digest()


def commit(key: bytes, message: bytes) -> str:
    """HMAC-SHA256 of `message` under `key`, base64url without padding (43 characters)."""
    mac = hmac.digest(key, message, "sha256")
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")
