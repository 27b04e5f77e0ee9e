"""PKCE (RFC 7636) with S256, and the `state` value that ties a callback to its request."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from clients.service.keys import b64url

__all__ = ["code_challenge", "new_state", "new_verifier", "same_state"]

#: RFC 7636 §4.1: 43 to 128 unreserved characters.
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")


def new_verifier() -> str:
    """A code_verifier with 256 bits of randomness (43 characters)."""
    return secrets.token_urlsafe(32)


def code_challenge(verifier: str) -> str:
    """BASE64URL(SHA-256(ASCII(code_verifier))) (RFC 7636 §4.2)."""
    if not _VERIFIER.fullmatch(verifier):
        raise ValueError("a code_verifier is 43-128 characters of A-Z a-z 0-9 - . _ ~")
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def new_state() -> str:
    """An unguessable `state` (RFC 6749 §10.12) for one authorization request."""
    return secrets.token_urlsafe(32)


def same_state(received: str | None, expected: str) -> bool:
    """Whether the callback's `state` is the request's, compared in constant time."""
    if received is None:
        return False
    return hmac.compare_digest(received.encode("utf-8"), expected.encode("utf-8"))
