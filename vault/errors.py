"""Errors raised by the vault package.

VaultError
├── ConfigError        settings or key files that are missing, unsafe or inconsistent
├── NotAuthorized      a request without the credentials an endpoint needs
├── InvalidRequest     a request the vault understands but cannot accept
├── NotFound           no such citizen, record, service or grant (for this caller)
├── vault.domain.errors.DomainError     rules of records, services and grants
└── vault.crypto.errors.CryptoError     keys and ciphertexts (deliberately opaque)
"""

from __future__ import annotations


class VaultError(Exception):
    """Base of every error raised by the vault package."""


class ConfigError(VaultError):
    """Settings or key material are missing, unsafe or inconsistent."""


class NotAuthorized(VaultError):
    """The caller did not present valid credentials."""


class InvalidRequest(VaultError):
    """The request is well formed but cannot be accepted."""


class NotFound(VaultError):
    """The thing asked for does not exist, or is not the caller's to see.

    One error for both, so a caller cannot probe for other people's grants.
    """
