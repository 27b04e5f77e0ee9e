"""The one place where errors become HTTP responses: RFC 9457 problem details."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.errors import LedgerError, RangeError
from vault.crypto.errors import CryptoError
from vault.domain.errors import AccessDenied, DomainError, IllegalTransition
from vault.errors import ConfigError, InvalidRequest, NotAuthorized, NotFound

__all__ = ["PROBLEM_JSON", "install_error_handlers", "problem"]

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


def problem(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A problem details response. `slug` names a vault-specific problem type."""
    body: dict[str, Any] = {
        "type": f"urn:citizen-vault:problem:{slug}" if slug else "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON,
                        headers=dict(headers) if headers else None)


def _validation_detail(exc: RequestValidationError) -> tuple[str, list[dict[str, Any]]]:
    errors = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "body", "path"))
        errors.append({"field": loc or "request", "message": err.get("msg", "invalid")})
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "invalid request"
    return summary, errors


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail, errors = _validation_detail(exc)
        return problem(400, detail, slug="invalid-request", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(RangeError)
    async def _range(_: Request, exc: RangeError) -> JSONResponse:
        return problem(400, str(exc), slug="out-of-range")

    @app.exception_handler(InvalidRequest)
    async def _bad(_: Request, exc: InvalidRequest) -> JSONResponse:
        return problem(400, str(exc), slug="invalid-request")

    @app.exception_handler(NotAuthorized)
    async def _unauthorized(_: Request, exc: NotAuthorized) -> JSONResponse:
        return problem(401, str(exc), slug="unauthorized",
                       headers={"WWW-Authenticate": 'Bearer realm="ledger"'})

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return problem(404, str(exc), slug="not-found")

    @app.exception_handler(AccessDenied)
    async def _denied(_: Request, exc: AccessDenied) -> JSONResponse:
        return problem(403, str(exc), slug=f"access-denied:{exc.reason}", reason=exc.reason)

    @app.exception_handler(IllegalTransition)
    async def _conflict(_: Request, exc: IllegalTransition) -> JSONResponse:
        return problem(409, str(exc), slug="illegal-transition")

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return problem(400, str(exc), slug="rejected")

    @app.exception_handler(CryptoError)
    async def _crypto(_: Request, exc: CryptoError) -> JSONResponse:
        # A ciphertext that does not open means the stored data or keys were damaged.
        log.error("crypto failure: %s", type(exc).__name__)
        return problem(500, "stored data failed its integrity check; the operator has been told")

    @app.exception_handler(ConfigError)
    async def _config(_: Request, exc: ConfigError) -> JSONResponse:
        log.error("configuration error: %s", exc)
        return problem(503, "the vault is not configured correctly", slug="misconfigured")

    @app.exception_handler(LedgerError)
    async def _ledger(_: Request, exc: LedgerError) -> JSONResponse:
        log.error("ledger error: %s", exc)
        return problem(503, "the ledger is unavailable; try again later", slug="ledger-unavailable")

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return problem(500, "an unexpected error occurred; it has been logged")
