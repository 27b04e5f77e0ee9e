"""Pairwise subject identifiers: each service knows a citizen by its own `sub`.

OpenID Connect Core §8.1 (pairwise identifier algorithm): the `sub` a service sees is
a keyed hash of (service, citizen). The same citizen has the same `sub` for one service
every time, and unrelated values for two services, so services cannot join their data
on it; without the vault's secret nobody can compute or invert it.

`sub = "psub_" + base64url(HMAC-SHA-256(secret, label || len || service_id || len ||
citizen_id)[:16])`: lengths make the input unambiguous ("ab"+"c" is not "a"+"bc");
the label separates this use of the secret from any other. 128 bits are plenty: the
values only need to be unguessable and not to collide among one service's citizens.
The prefix tells a pairwise subject from the ledger's "sub_" pseudonyms at a glance.

Changing the secret changes every service's `sub` for every citizen: never rotate it.
Erasing a citizen deletes their id, after which nobody can link a `sub` to anyone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

__all__ = ["PAIRWISE_PREFIX", "pairwise_sub"]

PAIRWISE_PREFIX = "psub_"
_LABEL = b"citizen-vault/pairwise-sub/v1\x00"
_MIN_SECRET = 32
_SIZE = 16


def _field(value: str, name: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be non-empty text")
    raw = value.encode("utf-8")
    return len(raw).to_bytes(4, "big") + raw


def pairwise_sub(secret: bytes, service_id: str, citizen_id: str) -> str:
    """The `sub` by which `service_id` knows `citizen_id` (27 characters, URL-safe)."""
    if not isinstance(secret, bytes) or len(secret) < _MIN_SECRET:
        raise ValueError(f"the pairwise secret must be at least {_MIN_SECRET} bytes")
    message = _LABEL + _field(service_id, "service_id") + _field(citizen_id, "citizen_id")
    digest = hmac.new(secret, message, hashlib.sha256).digest()[:_SIZE]
    return PAIRWISE_PREFIX + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
