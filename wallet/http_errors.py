"""Wallet errors for people and for the wallet's own scripts.

A browser navigating the wallet (Accept: text/html) gets an HTML page in plain words;
the wallet's passkey script (Accept: application/json) and every other client get RFC
9457 problem details through the vault's one mapping. A page that needs sign-in sends
the browser to the sign-in page instead.
"""

from __future__ import annotations

from http import HTTPStatus
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from vault.api.errors import ProblemRule, map_errors, problem
from wallet.errors import (
    CsrfRejected,
    LastPasskey,
    NotSignedIn,
    PasskeyRejected,
    RecoveryRefused,
    TooManyAttempts,
    WalletError,
)

__all__ = ["RULES", "install_wallet_error_handlers", "wants_page"]

RULES: dict[type[Exception], ProblemRule] = {
    PasskeyRejected: ProblemRule(400, "passkey-rejected"),
    LastPasskey: ProblemRule(409, "last-passkey"),
    RecoveryRefused: ProblemRule(400, "recovery-refused"),
    CsrfRejected: ProblemRule(403, "csrf"),
    WalletError: ProblemRule(400, "wallet"),
}

_TITLES = {
    400: "That did not work",
    401: "Please sign in",
    403: "Not allowed",
    404: "Page not found",
    409: "That cannot be done now",
    429: "Too many tries",
    500: "Something went wrong on our side",
    503: "The wallet is not available right now",
}


def wants_page(request: Request) -> bool:
    """A person's browser asking for a wallet page (not our script, not an API client)."""
    path = request.url.path
    return (path == "/wallet" or path.startswith("/wallet/")) and \
        "text/html" in request.headers.get("accept", "")


def problem_page(request: Request, status: int, detail: str) -> Response | None:
    if not wants_page(request):
        return None
    from wallet.routes.deps import render

    title = _TITLES.get(status) or HTTPStatus(status).phrase
    return render(request, "error.html", status_code=status, title=title, detail=detail)


def install_wallet_error_handlers(app: FastAPI) -> None:
    app.state.problem_page = problem_page
    map_errors(app, RULES)

    @app.exception_handler(NotSignedIn)
    async def _not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        if wants_page(request) and request.method == "GET":
            query = request.url.query
            target = request.url.path + (f"?{query}" if query else "")
            return RedirectResponse(f"/wallet/signin?next={quote(target)}", 303)
        return problem(401, str(exc), slug="not-signed-in")

    @app.exception_handler(TooManyAttempts)
    async def _too_many(request: Request, exc: TooManyAttempts) -> Response:
        headers = {"Retry-After": str(exc.retry_after)}
        page = problem_page(request, 429, str(exc))
        if page is not None:
            page.headers.update(headers)
            return page
        return problem(429, str(exc), slug="too-many-attempts", headers=headers)
