"""Checking that the citizen really said yes: the passkey assertion over a challenge.

The vault records every approval (and citizen-made pause, resume and revoke) together
with the WebAuthn assertion that proves it. The verifier that checks an assertion
against the citizen's registered passkey is passed in (the wallet provides it).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

from sqlmodel import Session

from ledger.canonical import canonical_json

__all__ = ["ApprovalProof", "ApprovalVerifier", "action_challenge"]


@dataclass(frozen=True, slots=True)
class ApprovalProof:
    """A WebAuthn assertion, each field base64url as the browser sent it."""

    credential_id: str
    authenticator_data: str
    client_data_json: str
    signature: str

    def to_json(self) -> dict[str, str]:
        return {"credential_id": self.credential_id,
                "authenticator_data": self.authenticator_data,
                "client_data_json": self.client_data_json, "signature": self.signature}


class ApprovalVerifier(Protocol):
    def verify(
        self, session: Session, *, citizen_id: str, challenge: bytes, proof: ApprovalProof
    ) -> None:
        """Raise unless `proof` is a valid assertion over `challenge` by one of the
        citizen's passkeys (user verified). Runs in the caller's session and
        transaction, so the sign counter update commits with the approval."""


def action_challenge(*, grant_id: str, action: str, terms_hash: bytes, after: int) -> bytes:
    """The challenge a citizen signs to pause, resume or revoke a grant.

    Approval signs the terms hash itself (ARCHITECTURE §3); other actions sign the hash
    of {action, grant_id, terms_hash (hex), after}, where `after` is the ledger index of
    the grant's latest transition (its newest grant.* entry; data.accessed entries do
    not count): one signature cannot serve another action, another grant, or the same
    action again later. An auditor recomputes it from the ledger.
    """
    return hashlib.sha256(canonical_json({
        "action": action, "after": after, "grant_id": grant_id,
        "terms_hash": terms_hash.hex()})).digest()
