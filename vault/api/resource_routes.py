"""GET /v1/data and GET /v1/grants/{grant_id}: the resource server (ARCHITECTURE §4, a contract).

A service presents an access token, checked as `vault.api.bearer` says (RFC 6750 §2.1,
verified, within its client's rate limit), then:

* `/v1/data` reads under the token's grant through the group-commit reader. The grant is
  checked live, inside the transaction that logs the read, so a revoked, paused, expired,
  exhausted grant or a suspended service is refused on the very next request, whatever
  tokens are outstanding; the `data.accessed` entry has committed before the response is
  sent. The grant's terms decide what is released, never the token's copy of them.
* `/v1/grants/{grant_id}` shows the token's own grant: its state and terms.

Errors are RFC 9457 problem details (ARCHITECTURE §4: RFC 6749 JSON is for /oauth/*):

* no token, or another scheme: 401 with `WWW-Authenticate: Bearer realm="vault"` and no
  error code (RFC 6750 §3.1: the client may not know it needs one);
* a token that is malformed, forged, expired, not yet valid, for another issuer or
  audience, or whose grant is gone or is not its client's: 401 with
  `WWW-Authenticate: Bearer realm="vault", error="invalid_token", error_description="..."`
  (RFC 6750 §3) and the type `urn:citizen-vault:problem:invalid-token`;
* a read the grant does not allow now: 403 `access-denied:<reason>` with `reason`
  (revoked, paused, expired, exhausted, not_yet_valid, too_soon, service_suspended, ...),
  mapped in `vault.api.errors`; a grant only to write is `insufficient_scope`, with a
  Bearer challenge naming it (RFC 6750 §3.1);
* another grant id than the token's in `/v1/grants/{grant_id}`: 404, the same answer
  whether that grant exists or not;
* over the rate limit: 429 with Retry-After; too many reads queued: 503 with Retry-After.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request, Response, Security
from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer

from vault.api.bearer import (
    BEARER_SCHEME,
    GRANT_GONE,
    LIMITER_ATTRIBUTE,
    NO_STORE,
    REALM,
    RESOURCE_PREFIX,
    Bearer,
    BearerTokenRejected,
    resource_audience,
)
from vault.api.deps import AppState, State, get_state
from vault.api.errors import Problem, problem, problem_response
from vault.api.ratelimit import ClientRateLimiter, RateLimited
from vault.domain.errors import AccessDenied
from vault.domain.grants import GrantState
from vault.errors import NotFound
from vault.oauth.tokens import AccessTokenClaims
from vault.services.access import TokensRevoked
from vault.services.context import reading
from vault.services.grants import GrantView, b64, get_grant
from vault.services.registry import get_service
from vault.storage.tables import OAuthTokenFamilyRow

__all__ = [
    "LIMITER_ATTRIBUTE",
    "REALM",
    "RESOURCE_PREFIX",
    "AccessTerms",
    "BearerTokenRejected",
    "DataRelease",
    "GrantStatus",
    "GrantTermsModel",
    "Problem",
    "Provenance",
    "install_resource_api",
    "resource_audience",
]

# -- schemas (they document /openapi.json) -----------------------------------------------------


class BatchProvenance(BaseModel):
    """One batch of a series as released: the version it is, who wrote it, the issuer's
    JWS over exactly its items (`value` = `{"items": [...]}`), and how many items."""

    version: int
    source: Literal["citizen", "issuer"]
    issuer: str | None
    record: str | None
    items: int = Field(ge=1)


class Provenance(BaseModel):
    """Where a released value came from (ARCHITECTURE §8): the citizen, or an issuer,
    with the issuer's JWS exactly as written, to check against its JWKS
    (`GET /services/{issuer}/jwks`)."""

    source: Literal["citizen", "issuer", "series"]
    issuer: str | None = Field(description="The issuing service's client_id, or null")
    version: int | None = Field(description="The record's version")
    record: str | None = Field(description="The issuer's compact JWS, exactly as written; "
                                           "null for the citizen's own values and issued "
                                           "values written without one")
    batches: list[BatchProvenance] | None = Field(
        default=None, description="Of a series (source \"series\"): each batch released, "
                                  "oldest first, with its own source, issuer and JWS")

    @model_serializer(mode="wrap")
    def _batches_only_of_a_series(self, handler: SerializerFunctionWrapHandler
                                  ) -> dict[str, Any]:
        # Left out of anything but a series, so other provenance is as it always was.
        out: dict[str, Any] = handler(self)
        if out.get("batches") is None:
            out.pop("batches", None)
        return out


class DataRelease(BaseModel):
    """What one read under a grant released, and where the read is logged."""

    grant_id: str = Field(description="The grant the read was made under")
    sub: str = Field(description="The citizen's pairwise subject for this service")
    data: dict[str, Any] = Field(description="Raw values by category, as the terms allow "
                                             "(a category the citizen has no record for is "
                                             "left out)")
    derived: dict[str, Any] = Field(description="Answers computed inside the vault, by name")
    ledger_index: int = Field(ge=0, description="Index of this read's data.accessed entry "
                                                "in the ledger (committed before the response)")
    provenance: dict[str, Provenance] = Field(
        default_factory=dict, description="Where each released category's value came from")


class AccessTerms(BaseModel):
    mode: Literal["one_time", "periodic"]
    max_reads: int | None
    min_interval: str | None = Field(description="ISO 8601 duration, or null")


class GrantTermsModel(BaseModel):
    """The terms exactly as hashed into terms_hash (ARCHITECTURE §3)."""

    grant_id: str
    service_id: str
    purpose: str
    categories: list[str]
    derived: list[str]
    not_before: str = Field(description="RFC 3339 UTC, whole seconds")
    expires_at: str = Field(description="RFC 3339 UTC, whole seconds")
    access: AccessTerms
    data_life: str = Field(description="ISO 8601 duration the service may keep what it reads")
    justification: str
    # Present only when not ["read"] (left out, it means ["read"]), as in the hashed terms.
    actions: list[Literal["read", "write"]] | None = Field(
        default=None, description='RFC 9396 actions: ["write"] for an issuer\'s grant to '
                                  'write, ["read", "write"] for both; absent: ["read"]')


class GrantStatus(BaseModel):
    """A grant's state and its terms."""

    grant_id: str
    service_id: str
    state: GrantState
    terms: GrantTermsModel
    terms_hash: str = Field(description="base64 SHA-256 of the RFC 8785 canonical terms, "
                                        "as in the grant.requested ledger entry")
    reads: int = Field(ge=0, description="Reads made under the grant so far")
    requested_at: datetime
    updated_at: datetime


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    what = {
        401: ("No valid access token", {"WWW-Authenticate": "Bearer challenge (RFC 6750 §3)"}),
        403: ("The grant does not allow this now (see reason)",
              {"WWW-Authenticate": "Bearer challenge naming insufficient_scope "
                                   "(RFC 6750 §3.1), on that reason only"}),
        404: ("No such grant for this token", {}),
        429: ("Over the client's rate limit", {"Retry-After": "Seconds to wait"}),
        502: ("A source holding a category answered something the vault will not "
              "release (nothing was released or logged)", {}),
        503: ("Busy, shutting down, or a source did not answer in time "
              "(source_unavailable); retry", {"Retry-After": "Seconds to wait"}),
    }
    return {status: problem_response(*what[status]) for status in statuses}


router = APIRouter(prefix=RESOURCE_PREFIX, tags=["resource"],
                   dependencies=[Security(BEARER_SCHEME)])


# -- routes -------------------------------------------------------------------------------------


@router.get("/data", summary="Read what the token's grant allows (logged before it is sent)",
            response_model=DataRelease, responses=_problems(401, 403, 429, 502, 503))
async def read_data(claims: Bearer, request: Request, response: Response) -> DataRelease:
    state = get_state(request)
    try:
        # Categories held at source are asked for first, outside any transaction; a
        # source's failure is the read's (503/502), with nothing logged or counted.
        fetched = () if state.sources is None else await state.sources.fetch_for(
            service_id=claims.client_id, grant_id=claims.grant_id,
            token_family=claims.token_family, asked=claims.authorization_details)
        release = await state.reader.aread(service_id=claims.client_id,
                                           grant_id=claims.grant_id,
                                           token_family=claims.token_family,
                                           fetched=fetched)
    except NotFound:
        raise BearerTokenRejected(GRANT_GONE) from None
    except TokensRevoked as exc:
        raise BearerTokenRejected(str(exc)) from None
    response.headers.update(NO_STORE)
    return DataRelease(grant_id=release.grant_id, sub=claims.sub, data=release.data,
                       derived=release.derived, ledger_index=release.ledger_index,
                       provenance=release.provenance)


def _own_grant(state: AppState, grant_id: str, claims: AccessTokenClaims) -> GrantView:
    """The token's grant, if `grant_id` names it and its client is active."""
    if grant_id != claims.grant_id:
        raise NotFound("no such grant")  # whether or not it exists: never reveal others'
    try:
        grant = get_grant(state.ctx, grant_id)
    except NotFound:
        raise BearerTokenRejected(GRANT_GONE) from None
    if grant.service_id != claims.client_id:
        raise BearerTokenRejected(GRANT_GONE)
    with reading(state.ctx) as session:
        if claims.token_family is not None:
            family = session.get(OAuthTokenFamilyRow, claims.token_family)
            if family is None or family.revoked_at is not None:
                raise BearerTokenRejected("the access token has been revoked")
        if not get_service(session, claims.client_id).active:
            raise AccessDenied("service_suspended")
    return grant


@router.get("/grants/{grant_id}", summary="The token's grant: its state and terms",
            response_model=GrantStatus, responses=_problems(401, 403, 404, 429),
            # The terms exactly as hashed: `actions` is left out when they leave it out.
            response_model_exclude_unset=True)
def grant_status(grant_id: str, claims: Bearer, state: State,
                 response: Response) -> GrantStatus:
    grant = _own_grant(state, grant_id, claims)
    response.headers.update(NO_STORE)
    return GrantStatus(
        grant_id=grant.id, service_id=grant.service_id, state=grant.state,
        terms=GrantTermsModel.model_validate(grant.terms.to_json()),
        terms_hash=b64(grant.terms_hash), reads=grant.reads,
        requested_at=grant.requested_at, updated_at=grant.updated_at)


# -- wiring -------------------------------------------------------------------------------------


def install_resource_api(app: FastAPI, *, limiter: ClientRateLimiter | None = None) -> None:
    """Serve /v1/* on `app`, with its rate limiter (default: 50 requests/s, bursts of
    100, per client) and the answers for its own errors (401 with a Bearer challenge,
    429 with Retry-After)."""
    # `is None`, not `or`: an empty limiter has len() 0 and would be taken for none.
    setattr(app.state, LIMITER_ATTRIBUTE, limiter if limiter is not None else ClientRateLimiter())
    app.include_router(router)

    @app.exception_handler(BearerTokenRejected)
    async def _rejected(_: Request, exc: BearerTokenRejected) -> Response:
        headers = {"WWW-Authenticate": exc.challenge(), **NO_STORE}
        if exc.error is None:
            return problem(401, exc.description, slug="unauthorized", headers=headers)
        return problem(401, exc.description, slug="invalid-token", headers=headers,
                       error=exc.error)

    @app.exception_handler(RateLimited)
    async def _limited(_: Request, exc: RateLimited) -> Response:
        return problem(429, str(exc), slug="rate-limited",
                       headers={"Retry-After": str(exc.retry_after)})
