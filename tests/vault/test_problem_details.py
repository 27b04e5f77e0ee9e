"""Every error family becomes the right RFC 9457 problem, and internals stay hidden."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ledger.errors import RangeError, StoreError
from vault.api.errors import install_error_handlers
from vault.crypto import DecryptionFailed
from vault.domain.errors import AccessDenied, GrantRefused, IllegalTransition
from vault.domain.grants import GrantAction, GrantState
from vault.errors import ConfigError, NotAuthorized, NotFound
from vault.oauth.errors import (
    InsufficientScopeError,
    InvalidClientError,
    InvalidGrantError,
    InvalidTokenError,
    OAuthError,
    SlowDownError,
)
from vault.services.group_commit import Overloaded
from wallet.errors import LastPasskey, PasskeyRejected
from wallet.http_errors import install_wallet_error_handlers

CASES = [
    (RangeError("start 9 is beyond the end"), 400, "out-of-range", "start 9"),
    (NotAuthorized("needs a key"), 401, "unauthorized", "needs a key"),
    (NotFound("no such grant"), 404, "not-found", "no such grant"),
    (AccessDenied("paused"), 403, "access-denied:paused", "paused"),
    (IllegalTransition(GrantState.DENIED, GrantAction.APPROVE), 409, "illegal-transition", ""),
    (GrantRefused("purpose not registered"), 400, "rejected", "purpose not registered"),
    (PasskeyRejected("wrong_origin", "the origin is wrong"), 400,
     "passkey-rejected:wrong_origin", "origin"),
    (LastPasskey("keep one"), 409, "last-passkey", "keep one"),
    (DecryptionFailed(), 500, None, "integrity"),
    (ConfigError("SECRET path /etc/x"), 503, "misconfigured", "not configured"),
    (StoreError("SECRET row 5 missing"), 503, "ledger-unavailable", "unavailable"),
    (Overloaded("too many reads waiting"), 503, "overloaded", "too many"),
    (ValueError("SECRET internals"), 500, None, "unexpected"),
]


@pytest.mark.parametrize(("error", "status", "slug", "detail"), CASES,
                         ids=[type(c[0]).__name__ for c in CASES])
def test_error_to_problem(error: Exception, status: int, slug: str | None, detail: str) -> None:
    app = FastAPI()
    install_error_handlers(app)
    install_wallet_error_handlers(app)

    @app.get("/boom")
    def boom() -> None:
        raise error

    r = TestClient(app, raise_server_exceptions=False).get("/boom")
    assert r.status_code == status
    assert r.headers["content-type"] == "application/problem+json"
    doc = r.json()
    assert doc["status"] == status and detail in doc["detail"]
    assert doc["type"] == (f"urn:citizen-vault:problem:{slug}" if slug else "about:blank")
    assert "SECRET" not in r.text  # operator-only messages never reach the client
    if isinstance(getattr(error, "reason", None), str):
        assert doc["reason"] == error.reason  # type: ignore[attr-defined]


OAUTH_CASES = [
    (InvalidGrantError("the code was used already"), 400, None),
    (SlowDownError("poll less often"), 400, None),
    (InvalidClientError("the client assertion does not verify"), 401, None),
    (InvalidTokenError("the token expired"), 401, 'Bearer error="invalid_token"'),
    (InsufficientScopeError("not in this grant"), 403, 'Bearer error="insufficient_scope"'),
]


@pytest.mark.parametrize(("error", "status", "challenge"), OAUTH_CASES,
                         ids=[type(c[0]).__name__ for c in OAUTH_CASES])
def test_oauth_errors_are_rfc6749_json(error: OAuthError, status: int,
                                       challenge: str | None) -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/oauth/boom")
    def boom() -> None:
        raise error

    r = TestClient(app, raise_server_exceptions=False).post("/oauth/boom")
    assert r.status_code == status
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"error": error.error, "error_description": error.description}
    assert r.headers["cache-control"] == "no-store"
    assert r.headers.get("www-authenticate") == challenge


def test_overload_says_when_to_retry() -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    def boom() -> None:
        raise Overloaded("too many reads waiting")

    r = TestClient(app, raise_server_exceptions=False).get("/boom")
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
