"""Wallet errors as RFC 9457 problem details, through the vault's one mapping."""

from __future__ import annotations

from fastapi import FastAPI

from vault.api.errors import ProblemRule, map_errors
from wallet.errors import LastPasskey, PasskeyRejected, WalletError

__all__ = ["RULES", "install_wallet_error_handlers"]

RULES: dict[type[Exception], ProblemRule] = {
    PasskeyRejected: ProblemRule(400, "passkey-rejected"),
    LastPasskey: ProblemRule(409, "last-passkey"),
    WalletError: ProblemRule(400, "wallet"),
}


def install_wallet_error_handlers(app: FastAPI) -> None:
    map_errors(app, RULES)
