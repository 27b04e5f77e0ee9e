"""The blocking client: runs the flows of `clients.service.core` over an httpx.Client."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
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

__all__ = ["VaultClient"]

T = TypeVar("T")


class VaultClient:
    """A service's client of one vault (`issuer`, its base URL), as `client_id`, signing
    with `key`. Use it as a context manager, or `close()` it.

    `transport` is any httpx transport (`httpx.ASGITransport(app)`,
    `httpx.MockTransport(handler)`); `clock` (unix seconds) and `sleep` are for tests;
    `on_refresh(grant)` is called after the client rotated a grant's tokens, the moment
    to store `grant.to_json()`. One client may be shared by threads.
    """

    def __init__(self, issuer: str, *, client_id: str, key: ServiceKey,
                 transport: httpx.BaseTransport | None = None, timeout: float = 10.0,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep,
                 on_refresh: Callable[[Grant], None] | None = None) -> None:
        self._core = ClientCore(issuer, client_id=client_id, key=key, clock=clock,
                                on_refresh=on_refresh)
        self._http = httpx.Client(transport=transport, timeout=timeout, follow_redirects=False)
        self._sleep = sleep
        self._refreshing = threading.Lock()

    def __enter__(self) -> VaultClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, request: HttpRequest) -> HttpResponse:
        try:
            r = self._http.request(request.method, request.url, headers=list(request.headers),
                                   content=request.body)
        except httpx.TransportError as exc:
            raise unreachable(request, exc) from exc
        return HttpResponse(r.status_code, r.headers, r.content)

    def _run(self, flow: Flow[T]) -> T:
        reply: HttpResponse | None = None
        try:
            while True:
                effect = flow.send(reply)
                reply = None
                if isinstance(effect, HttpRequest):
                    reply = self._send(effect)
                elif isinstance(effect, Sleep):
                    self._sleep(effect.seconds)
                elif isinstance(effect, RefreshTokens):
                    with self._refreshing:
                        self._run(self._core.refresh(effect.grant, effect.seen))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        finally:
            flow.close()

    def start_authorization(self, terms: PersonalData, *, redirect_uri: str
                            ) -> PendingAuthorization:
        """Push the request; send the citizen's browser to `.url` (or show `.qr_svg()`)."""
        return self._run(self._core.start_authorization(terms, redirect_uri))

    def finish_authorization(self, callback: str | Mapping[str, str],
                             pending: PendingAuthorization) -> Grant:
        """The grant, from the callback URL (or its query parameters) and the pending request."""
        return self._run(self._core.finish_authorization(callback, pending))

    def request_by_subject(self, sub: str, terms: PersonalData, *,
                           binding_message: str | None = None,
                           requested_expiry: int | None = None) -> BackchannelRequest:
        """Ask a known citizen in their wallet (CIBA); then `wait` for the answer."""
        return self._run(self._core.request_by_subject(
            sub, terms, binding_message=binding_message, requested_expiry=requested_expiry))

    def wait(self, bc: BackchannelRequest, timeout: float | None = None) -> Grant:
        """Block until the citizen answers; GrantPending after `timeout` seconds."""
        return self._run(self._core.wait(bc, timeout))

    def read(self, grant: Grant) -> Release:
        """Read what the grant allows (refreshing its tokens when needed)."""
        return self._run(self._core.read(grant))

    def grant_status(self, grant: Grant) -> GrantStatus:
        return self._run(self._core.grant_status(grant))

    def write_record(self, grant: Grant, category: str, value: Any, *,
                     jti: str | None = None, exp: int | None = None) -> RecordWritten:
        """Sign `value` as this issuer's record of `category` and write it for the grant's
        citizen (a write grant); RecordRefused, with the reason, if the vault will not."""
        return self._run(self._core.write_record(grant, category, value, jti=jti, exp=exp))

    def append_items(self, grant: Grant, category: str, items: Sequence[Any], *,
                     jti: str | None = None, exp: int | None = None) -> RecordWritten:
        """Sign `items` (1 to 1,000) once as this issuer's batch of series `category` and
        append it for the grant's citizen (a write grant); RecordRefused if the vault will
        not. Readers get it whole, with the signature, in `Release.series(category)`."""
        return self._run(self._core.append_items(grant, category, items, jti=jti, exp=exp))

    def withdraw_record(self, grant: Grant, category: str) -> RecordWritten:
        """Withdraw this issuer's current record of `category` (the award ended)."""
        return self._run(self._core.withdraw_record(grant, category))

    def revoke_tokens(self, grant: Grant) -> None:
        """Revoke the grant's tokens (the grant itself is the citizen's to end)."""
        self._run(self._core.revoke_tokens(grant))

    def introspect(self, token: str, *, token_type_hint: str | None = None) -> Introspection:
        return self._run(self._core.introspect(token, token_type_hint=token_type_hint))
