"""PUT and DELETE /v1/records/{category}: an issuer writes and withdraws records; POST
/v1/records/{category}/items: it appends a batch to a series (ARCHITECTURE §8 "Writing",
"Series", a contract).

The bearer token is checked as for `/v1/data` (`vault.api.bearer`: RFC 6750
§2.1, the token verified, the client's rate limit); the write itself, and every rule it
must pass, is `vault.services.issued`. Answers:

* `PUT`: 201 `{"category","version","ledger_index"}`, after the write has committed
  (group-committed with concurrent writes: `vault.services.group_commit`); the same JWS
  again gets the same answer, and writes nothing. 503 when too many writes wait.
* `DELETE`: 200 `{"category","version","ledger_index"}`, `version` being the one
  withdrawn (a body, so the issuer learns where the withdrawal is logged: hence 200,
  not 204).
* `POST .../items`: 201 `{"category","version","ledger_index"}`, the batch being the
  series' new version (`vault.services.issued_series`); the JWS's `value` is
  `{"items": [...]}`, 1 to 1,000 items, the JWS up to 512 KiB. Of a category that is not
  a series: 400 `not_series`; a batch with one bad item: 400 `invalid_value`, nothing kept.

Refusals are RFC 9457 problem details, and write nothing:

* a record the vault will not take: `record-refused:<reason>` with `reason`, 400
  (malformed, unknown_key, bad_signature, wrong_issuer, wrong_category, not_yet_valid,
  expired, invalid_value), 413 (too_large: a JWS over 64 KiB), 409 (jti_reused);
* a grant that does not let the service write this: 403 `access-denied:insufficient_scope`
  with `WWW-Authenticate: Bearer realm="vault", error="insufficient_scope", ...` (RFC 6750 §3.1);
  a grant that is revoked, paused, expired or not approved, or a suspended service: 403
  `access-denied:<reason>`, as `/v1/data` answers such a token;
* a token whose grant is gone or revoked: 401 with a Bearer challenge, as `/v1/data`;
* nothing of the issuer's to withdraw: 404.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, Security
from pydantic import BaseModel, Field

from vault.api.bearer import (
    BEARER_SCHEME,
    GRANT_GONE,
    NO_STORE,
    RESOURCE_PREFIX,
    Bearer,
    BearerTokenRejected,
)
from vault.api.deps import get_state
from vault.api.errors import problem_response
from vault.errors import NotFound
from vault.services.access import TokensRevoked
from vault.services.group_commit import WriteAsk
from vault.services.issued import NothingToWithdraw, Written, withdraw_issued
from vault.services.issued_series import append_issued

__all__ = ["BatchWrite", "RecordWrite", "RecordWritten", "router"]

router = APIRouter(prefix=RESOURCE_PREFIX, tags=["records"], dependencies=[Security(BEARER_SCHEME)])


class RecordWrite(BaseModel):
    """An issuer's record: a compact JWS (ES256, typ record+jwt) over
    `{"iss","category","value","iat","jti"}` and an optional `exp`."""

    record: str = Field(description="The compact JWS the issuer signed (at most 64 KiB)")


class RecordWritten(BaseModel):
    """Where a write (or withdrawal) is: its category, version and ledger entry."""

    category: str
    version: int = Field(ge=1, description="The version written (withdrawn, for DELETE)")
    ledger_index: int = Field(ge=0, description="Index of its record.written (or "
                                                "record.withdrawn) ledger entry")


_REFUSALS: dict[int | str, dict[str, Any]] = {
    400: problem_response("The record was refused (`reason` says which rule)"),
    401: problem_response("No valid access token",
                          {"WWW-Authenticate": "Bearer challenge (RFC 6750 §3)"}),
    403: problem_response("The grant does not let the service write this now "
                          "(`reason`: insufficient_scope, revoked, paused, expired, ...)",
                          {"WWW-Authenticate": "Bearer challenge naming insufficient_scope "
                                               "(RFC 6750 §3.1), on that reason only"}),
    409: problem_response("The record's jti was used before for another record"),
    413: problem_response("The record is over 64 KiB"),
    429: problem_response("Over the client's rate limit", {"Retry-After": "Seconds to wait"}),
}


def _answer(written: Written, response: Response) -> RecordWritten:
    response.headers.update(NO_STORE)
    return RecordWritten(category=written.category, version=written.version,
                         ledger_index=written.ledger_index)


@router.put("/records/{category}", status_code=201, response_model=RecordWritten,
            summary="Write an issued record for the grant's citizen (idempotent per JWS)",
            responses={**_REFUSALS, 503: problem_response(
                "Too many writes are waiting, or the vault is shutting down; nothing was "
                "written", {"Retry-After": "Seconds to wait"})})
async def put_record(category: str, body: RecordWrite, claims: Bearer, request: Request,
                     response: Response) -> RecordWritten:
    try:
        # Group-committed with concurrent writes; answered only after the commit.
        written = await get_state(request).writer.awrite(WriteAsk(
            service_id=claims.client_id, grant_id=claims.grant_id,
            token_family=claims.token_family, category=category, record=body.record))
    except NotFound:
        raise BearerTokenRejected(GRANT_GONE) from None
    except TokensRevoked as exc:
        raise BearerTokenRejected(str(exc)) from None
    return _answer(written, response)


class BatchWrite(BaseModel):
    """An issuer's batch: a compact JWS over `{"iss","category","value","iat","jti"}`
    whose `value` is `{"items": [...]}`, 1 to 1,000 items, one signature for them all."""

    record: str = Field(description="The compact JWS the issuer signed (at most 512 KiB)")


@router.post("/records/{category}/items", status_code=201, response_model=RecordWritten,
             summary="Append a batch of items to a series for the grant's citizen "
                     "(idempotent per JWS)",
             responses={**_REFUSALS, 413: problem_response("The batch's JWS is over 512 KiB")})
def post_items(category: str, body: BatchWrite, claims: Bearer, request: Request,
               response: Response) -> RecordWritten:
    try:
        written = append_issued(get_state(request).ctx, service_id=claims.client_id,
                                grant_id=claims.grant_id, token_family=claims.token_family,
                                category=category, record=body.record)
    except NotFound:
        raise BearerTokenRejected(GRANT_GONE) from None
    except TokensRevoked as exc:
        raise BearerTokenRejected(str(exc)) from None
    return _answer(written, response)


@router.delete("/records/{category}", response_model=RecordWritten,
               summary="Withdraw the issuer's current record of a category",
               responses={**_REFUSALS, 404: problem_response("No current record of yours")})
def delete_record(category: str, claims: Bearer, request: Request,
                  response: Response) -> RecordWritten:
    try:
        written = withdraw_issued(get_state(request).ctx, service_id=claims.client_id,
                                  grant_id=claims.grant_id, token_family=claims.token_family,
                                  category=category)
    except NothingToWithdraw:
        raise
    except NotFound:
        raise BearerTokenRejected(GRANT_GONE) from None
    except TokensRevoked as exc:
        raise BearerTokenRejected(str(exc)) from None
    return _answer(written, response)
