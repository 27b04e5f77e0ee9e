"""Wallet errors as RFC 9457 problem details (the vault's mapping, for the wallet's errors)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from vault.api.errors import problem
from wallet.errors import LastPasskey, PasskeyRejected, WalletError

__all__ = ["install_wallet_error_handlers"]


def install_wallet_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(PasskeyRejected)
    async def _passkey(_: Request, exc: PasskeyRejected) -> JSONResponse:
        return problem(400, str(exc), slug=f"passkey-rejected:{exc.reason}", reason=exc.reason)

    @app.exception_handler(LastPasskey)
    async def _last_passkey(_: Request, exc: LastPasskey) -> JSONResponse:
        return problem(409, str(exc), slug="last-passkey")

    @app.exception_handler(WalletError)
    async def _wallet(_: Request, exc: WalletError) -> JSONResponse:
        return problem(400, str(exc), slug="wallet")
