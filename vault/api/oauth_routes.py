"""The OAuth endpoints (ARCHITECTURE §4): metadata, JWKS and pushed authorization requests.

Errors here are RFC 6749 JSON: raise `vault.oauth.errors` classes (vault/api/errors.py
maps them). Form posts are read by `oauth_form`, never by FastAPI's form parsing, so a
malformed form is an OAuth error too, not a problem detail.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from vault.api.deps import State
from vault.oauth.errors import InvalidRequestError
from vault.oauth.metadata import JWKS_PATH, METADATA_PATH, PAR_PATH, Endpoints, server_metadata
from vault.oauth.par import push_request
from vault.oauth.tokens import jwks

__all__ = ["MAX_FORM_BYTES", "MAX_FORM_FIELDS", "OAuthForm", "oauth_form", "router"]

router = APIRouter(tags=["oauth"])

#: A form larger than this is refused before it is parsed.
MAX_FORM_BYTES = 64 * 1024
MAX_FORM_FIELDS = 50
_FORM_TYPE = "application/x-www-form-urlencoded"
#: Metadata and keys change rarely; verifiers refetch the JWKS on an unknown kid.
_CACHEABLE = {"Cache-Control": "public, max-age=300"}


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


@router.get(JWKS_PATH, summary="The public keys that sign access tokens (RFC 7517)")
def jwks_document(state: State) -> JSONResponse:
    return JSONResponse(jwks(state.token_keys), headers=_CACHEABLE)


@router.post(PAR_PATH, status_code=201,
             summary="Pushed authorization request (RFC 9126) with authorization_details")
def pushed_authorization_request(state: State, form: OAuthForm) -> JSONResponse:
    pushed = push_request(state.ctx, form, seen=state.jti_store,
                          audience=Endpoints.of(state.settings.base_url).par_audience)
    return JSONResponse(
        {"request_uri": pushed.request_uri, "expires_in": pushed.expires_in(pushed.created_at)},
        status_code=201, headers={"Cache-Control": "no-store"})
