"""The one place where errors become HTTP responses: RFC 9457 problem details."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.errors import LedgerError, RangeError
from vault.api.bearer import bearer_challenge
from vault.crypto.errors import CryptoError
from vault.domain.errors import AccessDenied, DomainError, IllegalTransition, RecordConflict
from vault.domain.relationships import RelationshipRefused
from vault.errors import ConfigError, InvalidRequest, NotAuthorized, NotFound
from vault.oauth.errors import OAuthError, RateLimitedError, RequestDeniedError
from vault.oauth.record_jws import RecordRefused, RecordTooLarge
from vault.services.group_commit import Overloaded, ReaderStopped
from vault.services.issued import RecordJtiReused
from vault.services.sources import RETRY_AFTER as SOURCE_RETRY_AFTER
from vault.services.sources import SourceBadAnswer, SourceUnavailable
from vault.services.witnessing import NotWitnessed

__all__ = [
    "PROBLEM_JSON",
    "RULES",
    "FieldProblem",
    "OAuthErrorBody",
    "Problem",
    "ProblemPage",
    "ProblemRule",
    "document_error_responses",
    "install_error_handlers",
    "map_errors",
    "oauth_error",
    "problem",
    "problem_response",
]

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


#: A hook on `app.state.problem_page`: given a request and a problem's status and detail,
#: a page for people (the wallet's HTML error page) or None for problem JSON.
ProblemPage = Callable[[Request, int, str], Response | None]


def _for_people(request: Request, status: int, detail: str) -> Response | None:
    page: ProblemPage | None = getattr(request.app.state, "problem_page", None)
    return page(request, status, detail) if page is not None else None


def _validation_detail(exc: RequestValidationError) -> tuple[str, list[dict[str, Any]]]:
    errors = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "body", "path"))
        errors.append({"field": loc or "request", "message": err.get("msg", "invalid")})
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "invalid request"
    return summary, errors


@dataclass(frozen=True, slots=True)
class ProblemRule:
    """How one family of errors becomes a problem: status, type slug and, for errors whose
    message is for the operator's eyes only, a fixed `detail` (the error is logged)."""

    status: int
    slug: str | None
    detail: str | None = None
    headers: Mapping[str, str] | None = None
    #: Headers that depend on the error itself (added to `headers`).
    headers_of: Callable[[Exception], Mapping[str, str]] | None = None


def _scope_challenge(exc: Exception) -> Mapping[str, str]:
    """RFC 6750 §3.1: a token without the scope a request needs (a write under a read
    grant, a read under a write grant, a category outside the grant) is answered 403
    with a Bearer challenge naming insufficient_scope, as a bad token's 401 names
    invalid_token. No other refusal is the token's scope, so none gets one."""
    if getattr(exc, "reason", None) != "insufficient_scope":
        return {}
    return {"WWW-Authenticate": bearer_challenge("insufficient_scope", str(exc))}


#: The vault's errors, most specific first (Starlette picks the nearest class anyway).
RULES: dict[type[Exception], ProblemRule] = {
    RangeError: ProblemRule(400, "out-of-range"),
    # An issuer's record (PUT /v1/records/{category}): the type names the rule it broke.
    RecordTooLarge: ProblemRule(413, "record-refused"),
    RecordJtiReused: ProblemRule(409, "record-refused"),
    RecordRefused: ProblemRule(400, "record-refused"),
    InvalidRequest: ProblemRule(400, "invalid-request"),
    NotAuthorized: ProblemRule(401, "unauthorized",
                               headers={"WWW-Authenticate": 'Bearer realm="ledger"'}),
    NotFound: ProblemRule(404, "not-found"),
    AccessDenied: ProblemRule(403, "access-denied", headers_of=_scope_challenge),
    IllegalTransition: ProblemRule(409, "illegal-transition"),
    # Acting for someone outside a live relationship's actions or dates (ARCHITECTURE §9).
    RelationshipRefused: ProblemRule(403, "relationship-refused"),
    RecordConflict: ProblemRule(409, "record-conflict"),
    DomainError: ProblemRule(400, "rejected"),
    # A ciphertext that does not open means the stored data or keys were damaged.
    CryptoError: ProblemRule(500, None, "stored data failed its integrity check; "
                                        "the operator has been told"),
    ConfigError: ProblemRule(503, "misconfigured", "the vault is not configured correctly"),
    Overloaded: ProblemRule(503, "overloaded", headers={"Retry-After": "1"}),
    # A read of a category held at source (ARCHITECTURE §8): nothing released or logged.
    SourceUnavailable: ProblemRule(503, "source_unavailable",
                                   headers={"Retry-After": str(SOURCE_RETRY_AFTER)}),
    SourceBadAnswer: ProblemRule(502, "source_bad_answer"),
    ReaderStopped: ProblemRule(503, "shutting-down", headers={"Retry-After": "1"}),
    # VAULT_WITNESS_QUORUM not reached yet for any checkpoint: the witnesses are asked again.
    NotWitnessed: ProblemRule(503, "not-witnessed", headers={"Retry-After": "1"}),
    LedgerError: ProblemRule(503, "ledger-unavailable",
                             "the ledger is unavailable; try again later"),
}


#: RFC 6749 §5.2 / RFC 6750 §3.1: 400 unless the code says otherwise.
_OAUTH_STATUS = {"invalid_client": 401, "invalid_token": 401, "insufficient_scope": 403,
                 "server_error": 500, "temporarily_unavailable": 503}


def oauth_error(exc: OAuthError) -> JSONResponse:
    """An OAuth error as its RFC 6749 JSON: never cached, with the bearer challenge on
    a bad token (RFC 6750 §3)."""
    status = _OAUTH_STATUS.get(exc.error, 400)
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    if isinstance(exc, RequestDeniedError):
        status = 403  # CIBA §13 (at the token endpoint access_denied stays 400, §11)
    elif isinstance(exc, RateLimitedError):
        status = 429  # RFC 6585 §4
        headers["Retry-After"] = str(exc.retry_after)
    if exc.error in ("invalid_token", "insufficient_scope"):
        headers["WWW-Authenticate"] = f'Bearer error="{exc.error}"'
    return JSONResponse({**exc.extra, "error": exc.error, "error_description": exc.description},
                        status_code=status, headers=headers)


def _handler(rule: ProblemRule) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def handle(request: Request, exc: Exception) -> Response:
        if rule.detail is not None:
            log.error("%s: %s", type(exc).__name__, exc)
            return _for_people(request, rule.status, rule.detail) or problem(
                rule.status, rule.detail, slug=rule.slug, headers=rule.headers)
        if (page := _for_people(request, rule.status, str(exc))) is not None:
            return page
        # Errors with a `reason` code (AccessDenied, PasskeyRejected) expose it to clients.
        reason = getattr(exc, "reason", None)
        extra = {"reason": reason} if isinstance(reason, str) else {}
        slug = f"{rule.slug}:{reason}" if extra and rule.slug else rule.slug
        headers = {**(rule.headers or {}), **(rule.headers_of(exc) if rule.headers_of else {})}
        return problem(rule.status, str(exc), slug=slug, headers=headers or None, **extra)

    return handle


def map_errors(app: FastAPI, rules: Mapping[type[Exception], ProblemRule]) -> None:
    for cls, rule in rules.items():
        app.add_exception_handler(cls, _handler(rule))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        detail, errors = _validation_detail(exc)
        return _for_people(request, 400, detail) or problem(
            400, detail, slug="invalid-request", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        return _for_people(request, exc.status_code, str(exc.detail)) or problem(
            exc.status_code, str(exc.detail), headers=exc.headers)

    map_errors(app, RULES)

    @app.exception_handler(OAuthError)
    async def _oauth(_: Request, exc: OAuthError) -> Response:
        return oauth_error(exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error", exc_info=exc)
        detail = "an unexpected error occurred; it has been logged"
        return _for_people(request, 500, detail) or problem(500, detail)



# -- what /openapi.json says about errors -----------------------------------------------------


class FieldProblem(BaseModel):
    field: str = Field(description="Dotted name of the parameter or body member")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details, as `problem` writes them (other members may be added)."""

    type: str = Field(description="urn:citizen-vault:problem:<slug>, or about:blank")
    title: str
    status: int
    detail: str
    reason: str | None = Field(default=None, description="Why a read was refused (403)")
    error: str | None = Field(default=None, description="RFC 6750 error code (401)")
    errors: list[FieldProblem] | None = Field(
        default=None, description="Each field that failed validation (400)")


class OAuthErrorBody(BaseModel):
    """RFC 6749 §5.2 error JSON, as `oauth_error` writes it (other members may be added)."""

    error: str = Field(description="The error code, e.g. invalid_request, invalid_client")
    error_description: str | None = None


_COMPONENTS = "#/components/schemas/"
#: What every POST /oauth/* may answer (RFC 6749 §5.2; ARCHITECTURE §4).
_OAUTH_ERRORS = {"400": "The request is not valid (RFC 6749 §5.2 error JSON)",
                 "401": "Client authentication failed: invalid_client"}


def problem_response(description: str,
                     headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """An OpenAPI response object for a problem details answer. It refers to the Problem
    schema, which `document_error_responses` puts in the document's components."""
    answer: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": f"{_COMPONENTS}Problem"}}}}
    if headers:
        answer["headers"] = {name: {"description": text, "schema": {"type": "string"}}
                             for name, text in headers.items()}
    return answer


def _oauth_error_response(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"{_COMPONENTS}OAuthErrorBody"}}}}


def _declare(responses: dict[str, Any], status: str, answer: dict[str, Any]) -> None:
    """Add `answer` under `status`, or its media types to what is declared there already."""
    declared = responses.setdefault(status, answer)
    if declared is not answer:
        content = declared.setdefault("content", {})
        for media_type, body in answer["content"].items():
            content.setdefault(media_type, body)


def _document_errors(doc: dict[str, Any]) -> dict[str, Any]:
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for model in (Problem, OAuthErrorBody):
        schema = model.model_json_schema(ref_template=_COMPONENTS + "{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    for path, operations in doc.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            if responses.pop("422", None) is not None:
                _declare(responses, "400", problem_response(
                    "The request is not valid: `errors` says what is wrong with each field"))
            if method == "post" and path.startswith("/oauth/"):
                for status, description in _OAUTH_ERRORS.items():
                    _declare(responses, status, _oauth_error_response(description))
    # FastAPI's validation error schemas describe nothing the vault sends.
    text = str(doc["paths"])
    for name in ("HTTPValidationError", "ValidationError"):
        if _COMPONENTS + name not in text:
            schemas.pop(name, None)
    return doc


def document_error_responses(app: FastAPI) -> None:
    """Make /openapi.json say how the vault answers errors (ARCHITECTURE §4).

    FastAPI documents a request that fails validation as 422 HTTPValidationError, but
    `install_error_handlers` answers 400 with problem details: each 422 becomes that 400.
    Every POST /oauth/* may answer 400 or 401 with RFC 6749 error JSON (`oauth_error`).
    Other problem statuses are declared by the routes, with `problem_response`. Call this
    once all routes are included; the document is still built on the first request.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _document_errors(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
