"""Errors raised by `vault.crypto`.

VaultError (vault.errors)
└── CryptoError          base of the crypto errors; also a key of the wrong size
    ├── DecryptionFailed a sealed blob did not open: one message, no detail (Fernet-like)
    └── UnknownKek       a wrapped data key names a key-encryption key the keyring lacks

Missing, malformed or unsafe key configuration raises `vault.errors.ConfigError`.
"""

from __future__ import annotations

from vault.errors import VaultError

__all__ = ["CryptoError", "DecryptionFailed", "UnknownKek"]


class CryptoError(VaultError):
    """Base of every error raised by `vault.crypto`."""


class DecryptionFailed(CryptoError):
    """The blob is not one this key sealed for this associated data.

    Deliberately says nothing more: a wrong key, a wrong context, a flipped bit and a
    truncated blob all look the same to the caller.
    """

    def __init__(self) -> None:
        super().__init__("the data could not be decrypted")


class UnknownKek(CryptoError):
    """The keyring has no key-encryption key with this id."""

    def __init__(self, kek_id: str) -> None:
        super().__init__(
            f"no key-encryption key with id {kek_id!r} in the keyring; "
            "was it dropped, or is VAULT_MASTER_KEY missing an old key?"
        )
        self.kek_id = kek_id
