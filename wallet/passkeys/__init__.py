"""Passkeys for the wallet: sign up, username-less sign in, and signed approvals.

    rp = RelyingParty.from_public_url(settings.public_url)
    options, challenge = registration_options(rp, user_id=user_handle(citizen_id), ...)
    ceremony = store.put(challenge, purpose="register", now=now)   # id in the session
    ...
    register_passkey(work, rp, citizen_id=..., credential=browser_json,
                     expected_challenge=store.take(ceremony, purpose="register", now=now),
                     label="My phone", data_key=data_key)

`PasskeyApprovalVerifier(rp)` is the vault's `ApprovalVerifier`; `verify_approval_offline`
checks a ledger approval with nothing but ledger data.

Names are loaded on first use (PEP 562), so `import wallet.passkeys.offline`, the
auditor's entry point, loads nothing from the vault.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wallet.passkeys.authentication import (
        PasskeyApprovalVerifier,
        approval_options,
        authentication_options,
        proof_from_browser,
        verify_sign_in,
    )
    from wallet.passkeys.challenges import (
        CHALLENGE_TTL,
        Ceremony,
        ChallengeStore,
        MemoryChallengeStore,
        SqlChallengeStore,
        new_challenge,
    )
    from wallet.passkeys.manage import (
        PasskeyView,
        credential_ids,
        list_passkeys,
        removal_challenge,
        remove_confirmed,
        remove_passkey,
        rename_passkey,
    )
    from wallet.passkeys.offline import AssertionRejected, verify_approval_offline
    from wallet.passkeys.registration import (
        check_label,
        label_ad,
        register_passkey,
        registration_options,
        user_handle,
    )
    from wallet.passkeys.relying_party import RelyingParty

__all__ = [
    "CHALLENGE_TTL",
    "AssertionRejected",
    "Ceremony",
    "ChallengeStore",
    "MemoryChallengeStore",
    "PasskeyApprovalVerifier",
    "PasskeyView",
    "RelyingParty",
    "SqlChallengeStore",
    "add_passkey",
    "approval_options",
    "authentication_options",
    "check_label",
    "credential_ids",
    "label_ad",
    "list_passkeys",
    "new_challenge",
    "proof_from_browser",
    "register_passkey",
    "registration_options",
    "removal_challenge",
    "remove_confirmed",
    "remove_passkey",
    "rename_passkey",
    "user_handle",
    "verify_approval_offline",
    "verify_sign_in",
]

_HOME = {
    "PasskeyApprovalVerifier": "authentication",
    "approval_options": "authentication",
    "authentication_options": "authentication",
    "proof_from_browser": "authentication",
    "verify_sign_in": "authentication",
    "CHALLENGE_TTL": "challenges",
    "Ceremony": "challenges",
    "ChallengeStore": "challenges",
    "SqlChallengeStore": "challenges",
    "MemoryChallengeStore": "challenges",
    "new_challenge": "challenges",
    "PasskeyView": "manage",
    "credential_ids": "manage",
    "list_passkeys": "manage",
    "removal_challenge": "manage",
    "remove_confirmed": "manage",
    "remove_passkey": "manage",
    "rename_passkey": "manage",
    "AssertionRejected": "offline",
    "verify_approval_offline": "offline",
    "check_label": "registration",
    "label_ad": "registration",
    "add_passkey": "registration",
    "register_passkey": "registration",
    "registration_options": "registration",
    "user_handle": "registration",
    "RelyingParty": "relying_party",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
