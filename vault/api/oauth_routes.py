"""The OAuth endpoints (ARCHITECTURE §4): metadata, JWKS, pushed authorization requests,
the token endpoint, CIBA, introspection and revocation. (The authorization endpoint is a
page for people: the wallet serves it, `wallet/routes/authorize.py`.)

Errors here are RFC 6749 JSON: raise `vault.oauth.errors` classes (vault/api/errors.py
maps them). Form posts are read by `oauth_form`, never by FastAPI's form parsing, so a
malformed form is an OAuth error too, not a problem detail.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from vault.api.deps import AppState, State
from vault.api.errors import OAuthErrorBody
from vault.api.resource_routes import resource_audience
from vault.oauth.backchannel import backchannel_request
from vault.oauth.errors import InvalidRequestError
from vault.oauth.issuance import Issuer
from vault.oauth.metadata import (
    BACKCHANNEL_PATH,
    INTROSPECTION_PATH,
    JWKS_PATH,
    METADATA_PATH,
    PAR_PATH,
    REVOCATION_PATH,
    TOKEN_PATH,
    Endpoints,
    server_metadata,
)
from vault.oauth.par import push_request
from vault.oauth.token_endpoint import introspect, revoke, token_request
from vault.oauth.tokens import jwks

__all__ = ["MAX_FORM_BYTES", "MAX_FORM_FIELDS", "OAuthForm", "oauth_form", "router"]

router = APIRouter(tags=["oauth"])

#: A form larger than this is refused before it is parsed.
MAX_FORM_BYTES = 64 * 1024
MAX_FORM_FIELDS = 50
_FORM_TYPE = "application/x-www-form-urlencoded"
#: Metadata and keys change rarely; verifiers refetch the JWKS on an unknown kid.
_CACHEABLE = {"Cache-Control": "public, max-age=300"}
#: Token responses and everything that carries a token (RFC 6749 §5.1).
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
#: Where a service asks citizens: held to its request rate (`AppState.request_limiter`).
_LIMITED: dict[int | str, dict[str, Any]] = {429: {
    "model": OAuthErrorBody,
    "description": "Over the client's rate of requests that ask citizens: "
                   "temporarily_unavailable; Retry-After says when to try again",
    "headers": {"Retry-After": {"description": "Seconds to wait",
                                "schema": {"type": "string"}}}}}


async def oauth_form(request: Request) -> dict[str, str]:
    """The request's form (RFC 6749 Appendix B), one value per name.

    Refused (invalid_request): another content type, a body over MAX_FORM_BYTES or with
    more than MAX_FORM_FIELDS fields, text that is not UTF-8, and any name given twice
    (RFC 6749 §3.1). Names sent without a value are treated as omitted (RFC 6749 §3.1).
    """
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != _FORM_TYPE:
        raise InvalidRequestError(f"the request body must be {_FORM_TYPE}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise InvalidRequestError(f"the request body is over {MAX_FORM_BYTES} bytes")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=False, errors="strict",
                          max_num_fields=MAX_FORM_FIELDS)
    except UnicodeDecodeError:
        raise InvalidRequestError("the form must be UTF-8 text") from None
    except ValueError:
        raise InvalidRequestError(f"the form has more than {MAX_FORM_FIELDS} fields") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise InvalidRequestError(f"the parameter '{name[:40]}' is given more than once")
        form[name] = value
    return form


OAuthForm = Annotated[dict[str, str], Depends(oauth_form)]


@router.get(METADATA_PATH, summary="Authorization server metadata (RFC 8414)")
def metadata(state: State) -> JSONResponse:
    return JSONResponse(server_metadata(state.settings.base_url), headers=_CACHEABLE)


@router.get(JWKS_PATH, summary="The public keys that sign access tokens and requests to "
                               "sources (RFC 7517)")
def jwks_document(state: State) -> JSONResponse:
    # One set, each key with its own kid: the access-token keys, then the keys signing
    # the vault's requests to sources (ARCHITECTURE §8), each current then retiring.
    return JSONResponse(jwks([*state.token_keys, *(state.source_keys or ())]),
                        headers=_CACHEABLE)


@router.post(PAR_PATH, status_code=201, responses=_LIMITED,
             summary="Pushed authorization request (RFC 9126) with authorization_details")
def pushed_authorization_request(state: State, form: OAuthForm) -> JSONResponse:
    pushed = push_request(state.ctx, form, seen=state.jti_store,
                          audience=Endpoints.of(state.settings.base_url).par_audience,
                          limit=state.request_limiter)
    return JSONResponse(
        {"request_uri": pushed.request_uri, "expires_in": pushed.expires_in(pushed.created_at)},
        status_code=201, headers={"Cache-Control": "no-store"})


def issuer_of(state: AppState) -> Issuer:
    """What the token endpoint signs with and for."""
    base_url = state.settings.base_url
    return Issuer(issuer=base_url, audience=resource_audience(base_url),
                  key=state.token_keys.current, pairwise_secret=state.app_secret)


def _audience(state: AppState, path: str) -> tuple[str, ...]:
    endpoints = Endpoints.of(state.settings.base_url)
    return endpoints.audience_at(endpoints.issuer.rstrip("/") + path)


@router.post(TOKEN_PATH, summary="Token endpoint: authorization_code (PKCE), refresh_token, "
                                 "CIBA (RFC 6749, OpenID CIBA)")
def token(state: State, form: OAuthForm) -> JSONResponse:
    answer = token_request(state.ctx, issuer_of(state), form, seen=state.jti_store,
                           audience=_audience(state, TOKEN_PATH))
    return JSONResponse(answer, headers=_NO_STORE)


@router.post(BACKCHANNEL_PATH, summary="Backchannel authentication request (OpenID CIBA, poll "
                                       "mode) for a citizen known by their pairwise sub",
             responses={**_LIMITED, 403: {
                 "model": OAuthErrorBody,
                 "description": "access_denied: the citizen may not be asked by this "
                                "service now (CIBA §13); nothing was recorded"}})
def backchannel(state: State, form: OAuthForm) -> JSONResponse:
    answer = backchannel_request(state.ctx, form, seen=state.jti_store,
                                 audience=_audience(state, BACKCHANNEL_PATH),
                                 limit=state.request_limiter)
    return JSONResponse(answer, headers=_NO_STORE)


@router.post(INTROSPECTION_PATH, summary="Token introspection (RFC 7662)")
def introspection(state: State, form: OAuthForm) -> JSONResponse:
    answer = introspect(state.ctx, issuer_of(state), state.token_keys, form,
                        seen=state.jti_store, audience=_audience(state, INTROSPECTION_PATH))
    return JSONResponse(answer, headers=_NO_STORE)


@router.post(REVOCATION_PATH, summary="Token revocation (RFC 7009)", response_class=Response,
             responses={200: {"description": "Revoked, or nothing to revoke: an empty body "
                                             "(RFC 7009 §2.2)"}})
def revocation(state: State, form: OAuthForm) -> Response:
    revoke(state.ctx, issuer_of(state), state.token_keys, form, seen=state.jti_store,
           audience=_audience(state, REVOCATION_PATH))
    return Response(status_code=200, headers=_NO_STORE)
