"""The register's one endpoint for the vault, and what it holds.

    POST /source   `{"request": "<JWS>"}` from the vault -> `{"record": "<JWS>"}` (200),
                   404 when the register holds nothing for that citizen, 401 for a
                   request that does not check out (`clients.service.sources`)
    GET  /health   200

The request is checked against the vault's `/oauth/jwks` (fetched once, and again when
a request names a key it has not seen: the vault rotated), for this source's URL as
`aud`, live, its `jti` never answered before. The citizen is found by `sub`, the
pairwise subject the vault gave the register when the citizen linked it
(`Register.enrol`). The answer is a record the register signs (`sign_record`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from clients.service import ServiceKey
from clients.service.errors import SourceRequestInvalid
from clients.service.sources import SeenRequests, verify_source_request

__all__ = ["SOURCE_PATH", "Register", "RegisterConfig", "create_app"]

SOURCE_PATH = "/source"
#: What the register can answer: the categories it holds.
HELD = ("address.home",)


@dataclass(frozen=True)
class RegisterConfig:
    """Everything the register is told; built once and passed to `create_app`."""

    vault_url: str
    client_id: str
    key: ServiceKey
    #: Where the vault reaches it; the source URL registered is `<public_url>/source`.
    public_url: str

    @property
    def source_url(self) -> str:
        return self.public_url.rstrip("/") + SOURCE_PATH


@dataclass
class Register:
    """Who is on the register, by the pairwise `sub` the vault gave it for them."""

    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Requests answered, as (sub, category, purpose, grant_ref): what it was asked.
    answered: list[tuple[str, str, str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def enrol(self, sub: str, category: str, value: Mapping[str, Any]) -> None:
        with self._lock:
            self.entries.setdefault(sub, {})[category] = dict(value)

    def lookup(self, sub: str, category: str) -> dict[str, Any] | None:
        with self._lock:
            return self.entries.get(sub, {}).get(category)


class _VaultKeys:
    """The vault's /oauth/jwks, fetched when first needed and when a kid is new."""

    def __init__(self, url: str, http: httpx.AsyncClient) -> None:
        self._url = url.rstrip("/") + "/oauth/jwks"
        self._http = http
        self._jwks: dict[str, Any] | None = None
        self._lock = asyncio.Lock()

    async def get(self, *, refresh: bool = False) -> dict[str, Any]:
        async with self._lock:
            if self._jwks is None or refresh:
                response = await self._http.get(self._url)
                response.raise_for_status()
                self._jwks = dict(response.json())
            return self._jwks


def create_app(config: RegisterConfig, register: Register | None = None, *,
               transport: httpx.AsyncBaseTransport | None = None,
               clock: Callable[[], float] = time.time) -> FastAPI:
    """The register's app. `transport` reaches the vault (tests); `clock` is now."""
    held = register if register is not None else Register()
    seen = SeenRequests()
    http = httpx.AsyncClient(transport=transport, timeout=5.0)
    keys = _VaultKeys(config.vault_url, http)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await http.aclose()

    app = FastAPI(title="Electoral register (a source for the vault)", lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.register = held

    async def checked(compact: Any) -> Any:
        for refresh in (False, True):
            try:
                return verify_source_request(
                    compact, await keys.get(refresh=refresh), audience=config.source_url,
                    issuer=config.vault_url.rstrip("/"), now=clock(), seen=seen)
            except SourceRequestInvalid as exc:
                if exc.code != "unknown_key" or refresh:
                    raise
        raise AssertionError("unreachable")

    @app.post(SOURCE_PATH)
    async def source(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            body = None
        compact = body.get("request") if isinstance(body, dict) else None
        try:
            asked = await checked(compact)
        except SourceRequestInvalid as exc:
            return JSONResponse({"error": exc.code, "detail": str(exc)}, status_code=401)
        if asked.category not in HELD:
            return JSONResponse({"error": "not_held"}, status_code=404)
        value = held.lookup(asked.sub, asked.category)
        if value is None:
            return JSONResponse({"error": "not_on_register"}, status_code=404)
        held.answered.append((asked.sub, asked.category, asked.purpose, asked.grant_ref))
        record = config.key.sign_record(asked.category, value, issuer=config.client_id)
        return JSONResponse({"record": record}, headers={"Cache-Control": "no-store"})

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
