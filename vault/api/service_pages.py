"""GET /services/{client_id}/privacy and /services/{client_id}/dpia: the privacy notice and
the data protection impact assessment the vault publishes for each service (ARCHITECTURE
§12), linked from the consent screen. HTML for people, in the transparency page's look and
under its policy: no script, nothing from another origin.

GET /services/{client_id}/jwks: the service's public JWK Set (ARCHITECTURE §8), for
machines: what a reader checks an issuer's signed records with.

The `/services/{client_id}/...` paths are the service's public face.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.templating import Jinja2Templates

from vault.api.deps import State
from vault.api.transparency_routes import CONTENT_SECURITY_POLICY
from vault.errors import NotFound
from vault.services.notices import service_notice
from vault.services.registry import service_jwks

__all__ = ["router"]

_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # A suspension or a new DPIA shows within five minutes.
    "Cache-Control": "public, max-age=300",
}

_TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
_TEMPLATES.env.autoescape = True  # every template, whatever its file name

router = APIRouter(prefix="/services", tags=["services"])


def _page(request: Request, state: State, client_id: str, template: str) -> HTMLResponse:
    try:
        notice = service_notice(state.ctx, client_id, public_url=state.settings.base_url)
    except NotFound:
        # People follow these links: a page that says so, not a problem document.
        missing: HTMLResponse = _TEMPLATES.TemplateResponse(
            request, "service_missing.html", {}, status_code=404,
            headers={**_HEADERS, "Cache-Control": "no-store"})
        return missing
    page: HTMLResponse = _TEMPLATES.TemplateResponse(request, template, {"s": notice},
                                                    headers=_HEADERS)
    return page


@router.get("/{client_id}/privacy", response_class=HTMLResponse,
            summary="A service's privacy notice (HTML), made from its registration",
            responses={404: {"description": "No such service (an HTML page)"}})
def privacy_notice(request: Request, client_id: str, state: State) -> HTMLResponse:
    return _page(request, state, client_id, "service_privacy.html")


@router.get("/{client_id}/dpia", response_class=HTMLResponse,
            summary="A service's data protection impact assessment (HTML)",
            responses={404: {"description": "No such service (an HTML page)"}})
def dpia(request: Request, client_id: str, state: State) -> HTMLResponse:
    return _page(request, state, client_id, "service_dpia.html")


#: Public keys, cached briefly: a rotation (`vault service keys`) shows within five
#: minutes, as for the vault's own `/oauth/jwks`.
_JWKS_HEADERS = {"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"}


@router.get("/{client_id}/jwks", response_class=JSONResponse,
            summary="A service's public keys (RFC 7517 JWK Set), to check the records it "
                    "issued",
            responses={404: {"description": "No such service (problem details)"}})
def jwks(client_id: str, state: State) -> JSONResponse:
    # An unknown service raises NotFound: a problem document, for a machine asked.
    return JSONResponse(service_jwks(state.ctx, client_id), headers=_JWKS_HEADERS)
