"""Errors raised by the wallet package.

VaultError                         (vault.errors)
└── WalletError                    base of every wallet error
    ├── PasskeyRejected            a passkey response failed a check; `reason` says which
    ├── InvalidLabel               a passkey name that is too long or has control characters
    ├── LastPasskey                removing the only passkey of a citizen without recovery
    ├── RecoveryRefused            a recovery code that is wrong or was used already
    ├── NotSignedIn                a page or action that needs a signed-in citizen
    ├── CsrfRejected               a state-changing request without this session's token
    ├── StalePlan                  a child's-vault plan changed, someone else's, or too old
    └── TooManyAttempts            too many sign-in or recovery attempts; `retry_after` s

Not in this tree, on purpose: `wallet.passkeys.offline.AssertionRejected`, raised by the
pure offline check, which imports nothing from the vault so an auditor can run it alone
(the online checks turn it into `PasskeyRejected` with the same reason and message).
A relying-party setting that cannot work (an IP address as RP ID, say) is a
`vault.errors.ConfigError`.
"""

from __future__ import annotations

from vault.errors import VaultError

__all__ = [
    "REJECT_REASONS",
    "CsrfRejected",
    "InvalidLabel",
    "LastPasskey",
    "NotSignedIn",
    "PasskeyRejected",
    "RecoveryRefused",
    "StalePlan",
    "TooManyAttempts",
    "WalletError",
]

#: Every value `PasskeyRejected.reason` takes.
REJECT_REASONS = frozenset({
    "malformed",             # not a well-formed WebAuthn response
    "unknown_credential",    # no passkey with this credential id is registered
    "already_registered",    # this credential id is registered already
    "other_citizen",         # the passkey belongs to someone else
    "user_handle_mismatch",  # the authenticator named another account, or none
    "wrong_type",            # client data of a create ceremony used for get, or back
    "challenge_mismatch",    # signed a challenge other than the one expected
    "challenge_unknown",     # the challenge was never issued or was already used (replay)
    "challenge_expired",     # the challenge was issued too long ago
    "wrong_origin",          # the page that asked is not one of the vault's origins
    "cross_origin",          # the ceremony ran inside a frame of another site
    "wrong_rp_id",           # the authenticator signed for another relying party
    "user_not_present",      # the UP flag is not set
    "user_not_verified",     # the UV flag is not set (no PIN, fingerprint or face)
    "counter_regression",    # the signature counter did not go up: a cloned key?
    "bad_signature",         # the signature does not verify under the registered key
    "unsupported_algorithm",  # a key other than ES256 (P-256), EdDSA (Ed25519), RS256 (RSA)
})


class WalletError(VaultError):
    """Base of every error raised by the wallet package."""


class PasskeyRejected(WalletError):
    """A passkey registration or assertion was refused.

    `reason` is one of `REJECT_REASONS` (for logs, metrics and tests); the message says
    in plain words what was wrong and, where it helps, what was expected.
    """

    def __init__(self, reason: str, message: str) -> None:
        if reason not in REJECT_REASONS:
            raise ValueError(f"unknown passkey rejection reason {reason!r}")
        super().__init__(message)
        self.reason = reason


class InvalidLabel(WalletError):
    """A passkey name the wallet cannot keep."""


class LastPasskey(WalletError):
    """Removing this passkey would lock the citizen out of their wallet."""


class RecoveryRefused(WalletError):
    """A recovery code that does not match an unused code of any citizen."""


class NotSignedIn(WalletError):
    """The request needs a signed-in citizen (none, or the session timed out)."""


class CsrfRejected(WalletError):
    """A state-changing request that did not come from the wallet's own pages."""


class StalePlan(WalletError):
    """A child's-vault plan (`wallet.children`) that was changed, is someone else's, or
    was drawn too long ago: the parent starts again."""


class TooManyAttempts(WalletError):
    """Rate limited: try again after `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
