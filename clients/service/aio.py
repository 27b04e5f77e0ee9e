"""The asyncio client: runs the flows of `clients.service.core` over an httpx.AsyncClient."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx

from clients.service.core import ClientCore, Flow, RefreshTokens, Sleep
from clients.service.keys import ServiceKey
from clients.service.messages import HttpRequest, HttpResponse, unreachable
from clients.service.results import (
    BackchannelRequest,
    Grant,
    GrantStatus,
    Introspection,
    PendingAuthorization,
    RecordWritten,
    Release,
)
from clients.service.terms import PersonalData

__all__ = ["AsyncVaultClient"]

T = TypeVar("T")


class AsyncVaultClient:
    """`VaultClient` for asyncio: the same arguments and methods, awaited; `sleep` is a
    coroutine function (asyncio.sleep). Use `async with`, or `await client.aclose()`.
    One client may be shared by the tasks of one event loop."""

    def __init__(self, issuer: str, *, client_id: str, key: ServiceKey,
                 transport: httpx.AsyncBaseTransport | None = None, timeout: float = 10.0,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 on_refresh: Callable[[Grant], None] | None = None) -> None:
        self._core = ClientCore(issuer, client_id=client_id, key=key, clock=clock,
                                on_refresh=on_refresh)
        self._http = httpx.AsyncClient(transport=transport, timeout=timeout,
                                       follow_redirects=False)
        self._sleep = sleep
        self._refreshing = asyncio.Lock()

    async def __aenter__(self) -> AsyncVaultClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, request: HttpRequest) -> HttpResponse:
        try:
            r = await self._http.request(request.method, request.url,
                                         headers=list(request.headers), content=request.body)
        except httpx.TransportError as exc:
            raise unreachable(request, exc) from exc
        return HttpResponse(r.status_code, r.headers, r.content)

    async def _run(self, flow: Flow[T]) -> T:
        reply: HttpResponse | None = None
        try:
            while True:
                effect = flow.send(reply)
                reply = None
                if isinstance(effect, HttpRequest):
                    reply = await self._send(effect)
                elif isinstance(effect, Sleep):
                    await self._sleep(effect.seconds)
                elif isinstance(effect, RefreshTokens):
                    async with self._refreshing:
                        await self._run(self._core.refresh(effect.grant, effect.seen))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        finally:
            flow.close()

    async def start_authorization(self, terms: PersonalData, *, redirect_uri: str
                                  ) -> PendingAuthorization:
        return await self._run(self._core.start_authorization(terms, redirect_uri))

    async def finish_authorization(self, callback: str | Mapping[str, str],
                                   pending: PendingAuthorization) -> Grant:
        return await self._run(self._core.finish_authorization(callback, pending))

    async def request_by_subject(self, sub: str, terms: PersonalData, *,
                                 binding_message: str | None = None,
                                 requested_expiry: int | None = None) -> BackchannelRequest:
        return await self._run(self._core.request_by_subject(
            sub, terms, binding_message=binding_message, requested_expiry=requested_expiry))

    async def wait(self, bc: BackchannelRequest, timeout: float | None = None) -> Grant:
        return await self._run(self._core.wait(bc, timeout))

    async def read(self, grant: Grant) -> Release:
        return await self._run(self._core.read(grant))

    async def grant_status(self, grant: Grant) -> GrantStatus:
        return await self._run(self._core.grant_status(grant))

    async def write_record(self, grant: Grant, category: str, value: Any, *,
                           jti: str | None = None, exp: int | None = None) -> RecordWritten:
        return await self._run(self._core.write_record(grant, category, value, jti=jti,
                                                       exp=exp))

    async def append_items(self, grant: Grant, category: str, items: Sequence[Any], *,
                           jti: str | None = None, exp: int | None = None) -> RecordWritten:
        return await self._run(self._core.append_items(grant, category, items, jti=jti,
                                                       exp=exp))

    async def withdraw_record(self, grant: Grant, category: str) -> RecordWritten:
        return await self._run(self._core.withdraw_record(grant, category))

    async def revoke_tokens(self, grant: Grant) -> None:
        await self._run(self._core.revoke_tokens(grant))

    async def introspect(self, token: str, *, token_type_hint: str | None = None
                         ) -> Introspection:
        return await self._run(self._core.introspect(token, token_type_hint=token_type_hint))
