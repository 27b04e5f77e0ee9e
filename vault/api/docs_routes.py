"""GET /docs: the API's documentation (Swagger UI), served wholly from the vault's origin.

FastAPI's own /docs loads Swagger UI from a CDN with an inline script: a blank page
offline, and a third party's script on the origin of citizens' cookies. Here the page,
Swagger UI's files (shipped in the `fastapi-offline` package) and the script that starts
it (`static/docs.js`) all come from the vault, under a CSP that allows nothing else.
/redoc is not served: ReDoc needs inline styles and blob: workers, which this CSP refuses.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from html import escape
from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, HTMLResponse

__all__ = ["CONTENT_SECURITY_POLICY", "DOCS_PATH", "install_api_docs"]

DOCS_PATH = "/docs"
#: Scripts, styles, images and the document itself from this origin only. Swagger UI's
#: stylesheet draws its icons as data: SVG; "Try it out" calls this origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'none'"
)
_PAGE_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
_ASSET_HEADERS: Mapping[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "public, max-age=3600",
}
_SWAGGER = Path(str(files("fastapi_offline") / "static"))
#: What /docs/<name> serves, and as what.
_ASSETS: Mapping[str, tuple[Path, str]] = {
    "swagger-ui.css": (_SWAGGER / "swagger-ui.css", "text/css"),
    "swagger-ui-bundle.js": (_SWAGGER / "swagger-ui-bundle.js", "text/javascript"),
    "docs.js": (Path(__file__).parent / "static" / "docs.js", "text/javascript"),
}


def _page(title: str, openapi_url: str) -> str:
    return f"""<!doctype html>
<html lang="en-GB">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{escape(title)}: API</title>
  <link rel="stylesheet" href="{DOCS_PATH}/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui" data-openapi-url="{escape(openapi_url)}"></div>
  <script src="{DOCS_PATH}/swagger-ui-bundle.js"></script>
  <script src="{DOCS_PATH}/docs.js"></script>
</body>
</html>
"""


def _asset(path: Path, media_type: str) -> Callable[[], Awaitable[FileResponse]]:
    async def serve() -> FileResponse:
        return FileResponse(path, media_type=media_type, headers=dict(_ASSET_HEADERS))

    return serve


def install_api_docs(app: FastAPI) -> None:
    """Serve /docs and its files; create the app with `docs_url=None, redoc_url=None`."""
    if app.openapi_url is None:
        raise ValueError("the API docs need the app's OpenAPI document")
    router = APIRouter(include_in_schema=False)
    page = _page(app.title, app.openapi_url)

    @router.get(DOCS_PATH)
    async def docs() -> HTMLResponse:
        return HTMLResponse(page, headers=dict(_PAGE_HEADERS))

    for name, (path, media_type) in _ASSETS.items():
        router.add_api_route(f"{DOCS_PATH}/{name}", _asset(path, media_type), methods=["GET"])
    app.include_router(router)
