"""Errors raised by the vault package.

VaultError
├── ConfigError        settings or key files that are missing, unsafe or inconsistent
├── NotAuthorized      a request without the credentials an endpoint needs
└── InvalidRequest     a request the vault understands but cannot accept
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
