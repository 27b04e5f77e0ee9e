"""Shared set-up for the service SDK tests.

* `fake` : a scripted authorization server behind `httpx.MockTransport` that records
  every request the SDK sends and checks its client assertions with PyJWT;
* `sdk` : the SDK's client over `fake`, once the sync `VaultClient` and once the
  `AsyncVaultClient` (driven from the test through one event loop), with a fake clock
  and a sleep that only moves it;
* `app` : the real vault app (SQLite) with the SDK's service registered, a citizen with
  data and a passkey, and access tokens minted the way the token endpoint mints them.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl

import httpx
import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI
from fastapi.testclient import TestClient
from support.vaultworld import World, add_passkey, ask, give_ada_data

from clients.service import (
    Access,
    AsyncVaultClient,
    Grant,
    PersonalData,
    ServiceKey,
    VaultClient,
)
from vault.api.deps import AppState
from vault.api.resource_routes import LIMITER_ATTRIBUTE, resource_audience
from vault.app import create_app
from vault.config import Settings
from vault.domain.grants import GrantAction
from vault.oauth import issue_access_token, pairwise_sub
from vault.services import citizens, grants, registry
from vault.services.context import VaultContext
from wallet.passkeys.software import SoftAuthenticator

ISSUER = "https://vault.example.gov"
CLIENT_ID = "svc_sdktest"
REDIRECT = "https://badges.example.gov/cb"
ORIGIN = "http://localhost:8000"
T0 = 1_800_000_000.0  # 2027-01-15: the fake clock's start
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def blue_badge_terms(**changes: Any) -> PersonalData:
    args: dict[str, Any] = {
        "purpose": "eligibility_assessment", "categories": ["address.home"],
        "derived": ["age_over_65"], "duration": "P30D", "access": Access.periodic(max_reads=3),
        "data_life": "P30D", "justification": "To check you can have a Blue Badge."}
    args.update(changes)
    return PersonalData(**args)


@pytest.fixture
def terms() -> PersonalData:
    return blue_badge_terms()


# -- a fake clock -------------------------------------------------------------------------------


@dataclass
class FakeTime:
    """Unix seconds that only `sleep` moves; every sleep is recorded."""

    t: float = T0
    sleeps: list[float] = field(default_factory=list)
    on_sleep: Callable[[float], None] | None = None

    def clock(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.t += seconds
        if self.on_sleep is not None:
            self.on_sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


# -- a scripted authorization server ------------------------------------------------------------


def metadata(issuer: str = ISSUER) -> dict[str, Any]:
    return {"issuer": issuer, "authorization_endpoint": f"{issuer}/oauth/authorize",
            "token_endpoint": f"{issuer}/oauth/token",
            "pushed_authorization_request_endpoint": f"{issuer}/oauth/par",
            "backchannel_authentication_endpoint": f"{issuer}/oauth/bc-authorize",
            "introspection_endpoint": f"{issuer}/oauth/introspect",
            "revocation_endpoint": f"{issuer}/oauth/revoke", "jwks_uri": f"{issuer}/oauth/jwks"}


Answer = httpx.Response | Callable[[httpx.Request], Any]


class FakeVault:
    """Answers the metadata itself, and every other path from its queue of answers."""

    issuer = ISSUER
    client_id = CLIENT_ID

    def __init__(self) -> None:
        self.key = ServiceKey.generate()
        self.metadata = metadata()
        self.requests: list[httpx.Request] = []
        self.queues: dict[str, list[Answer]] = defaultdict(list)

    def answer(self, path: str, *answers: Answer) -> None:
        self.queues[path].extend(answers)

    def _pick(self, request: httpx.Request) -> Any:
        self.requests.append(request)
        path = request.url.path
        if path == "/.well-known/oauth-authorization-server":
            return httpx.Response(200, json=self.metadata)
        queue = self.queues.get(path)
        assert queue, f"unexpected {request.method} {request.url}"
        answer = queue.pop(0)
        return answer(request) if callable(answer) else answer

    def handle(self, request: httpx.Request) -> Any:
        return self._pick(request)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def sent(self, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path == path]

    def forms(self, path: str) -> list[dict[str, str]]:
        """The forms posted to `path`, each checked to be a form of unique names."""
        out = []
        for r in self.sent(path):
            assert r.method == "POST"
            assert r.headers["content-type"] == "application/x-www-form-urlencoded"
            pairs = parse_qsl(r.content.decode("ascii"), keep_blank_values=True)
            assert len(pairs) == len(dict(pairs)), "a field sent twice"
            out.append(dict(pairs))
        return out

    def assertion_claims(self, form: dict[str, str], *, now: float) -> dict[str, Any]:
        """The client assertion of `form`, verified with PyJWT against the public key."""
        assert form["client_id"] == self.client_id
        assert form["client_assertion_type"] == ASSERTION_TYPE
        token = form["client_assertion"]
        header = pyjwt.get_unverified_header(token)
        assert header == {"alg": "ES256", "typ": "JWT"}
        public = serialization.load_pem_private_key(self.key.private_pem(), None).public_key()
        claims: dict[str, Any] = pyjwt.decode(
            token, public, algorithms=["ES256"], audience=self.issuer,
            options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"],
                     "verify_exp": False, "verify_iat": False})
        assert claims["iss"] == claims["sub"] == self.client_id
        assert claims["iat"] == int(now) and claims["exp"] == claims["iat"] + 60
        return claims


def token_answer(access: str = "at-1", refresh: str | None = "rt-1", *, expires_in: int = 300,
                 grant_id: str = "gr_1", sub: str = "psub_1", **extra: Any) -> httpx.Response:
    body: dict[str, Any] = {"access_token": access, "token_type": "Bearer",
                            "expires_in": expires_in, "grant_id": grant_id, "sub": sub,
                            "authorization_details": [{"type": "personal_data"}], **extra}
    if refresh is not None:
        body["refresh_token"] = refresh
    return httpx.Response(200, json=body, headers={"cache-control": "no-store"})


def oauth_error(error: str, status: int = 400, **extra: Any) -> httpx.Response:
    return httpx.Response(status, json={"error": error, "error_description": f"because {error}",
                                        **extra})


def problem(status: int, slug: str, headers: dict[str, str] | None = None,
            **extra: Any) -> httpx.Response:
    return httpx.Response(status, headers={"content-type": "application/problem+json",
                                           **(headers or {})},
                          content=json.dumps({"type": f"urn:citizen-vault:problem:{slug}",
                                              "title": slug, "status": status,
                                              "detail": f"refused: {slug}", **extra}))


def release_answer(grant_id: str = "gr_1", sub: str = "psub_1") -> httpx.Response:
    return httpx.Response(200, json={"grant_id": grant_id, "sub": sub,
                                     "data": {"address.home": {"town": "London"}},
                                     "derived": {"age_over_65": True}, "ledger_index": 7})


@pytest.fixture
def fake() -> FakeVault:
    return FakeVault()


# -- the SDK, sync and async --------------------------------------------------------------------


class Sdk:
    """One of the two clients over `fake`, called the same way from a test."""

    def __init__(self, kind: str, fake: FakeVault, time: FakeTime, **kw: Any) -> None:
        self.kind = kind
        self.refreshed: list[Grant] = []
        common: dict[str, Any] = {"client_id": fake.client_id, "key": fake.key,
                                  "transport": fake.transport, "clock": time.clock,
                                  "on_refresh": self.refreshed.append, **kw}
        self.loop: asyncio.AbstractEventLoop | None = None
        if kind == "sync":
            self.client: Any = VaultClient(fake.issuer, sleep=time.sleep, **common)
        else:
            self.loop = asyncio.new_event_loop()
            self.client = AsyncVaultClient(fake.issuer, sleep=time.asleep, **common)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.client, name)
        if self.loop is None:
            return method  # type: ignore[no-any-return]
        loop = self.loop
        return lambda *a, **kw: loop.run_until_complete(method(*a, **kw))

    def close(self) -> None:
        if self.loop is None:
            self.client.close()
        else:
            self.loop.run_until_complete(self.client.aclose())
            self.loop.close()


@pytest.fixture(params=["sync", "async"])
def sdk(request: pytest.FixtureRequest, fake: FakeVault, fake_time: FakeTime) -> Iterator[Sdk]:
    s = Sdk(request.param, fake, fake_time)
    yield s
    s.close()


def a_grant(*, expires_in: float = 300, now: float = T0, refresh: str | None = "rt-1",
            access: str = "at-1") -> Grant:
    return Grant(grant_id="gr_1", sub="psub_1", access_token=access, refresh_token=refresh,
                 expires_at=datetime.fromtimestamp(now + expires_in, UTC),
                 authorization_details=[{"type": "personal_data"}])


@pytest.fixture
def kit() -> SimpleNamespace:
    """The answer builders, for test modules (which cannot import this conftest)."""
    return SimpleNamespace(token_answer=token_answer, oauth_error=oauth_error,
                           problem=problem, release_answer=release_answer, grant=a_grant,
                           T0=T0, terms=blue_badge_terms)


# -- the real app -------------------------------------------------------------------------------


class ThroughTestClient(httpx.BaseTransport):
    """Carries a sync httpx client's requests into the app through a started TestClient
    (so the app's lifespan has run), using only the TestClient's public API."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        r = self.client.request(request.method, str(request.url), headers=request.headers,
                                content=request.read(), follow_redirects=False)
        return httpx.Response(r.status_code, headers=r.headers, content=r.content)


@dataclass
class Citizen:
    world: World
    device: SoftAuthenticator
    grant: grants.GrantView

    @property
    def grant_id(self) -> str:
        return self.grant.id


@dataclass
class AppVault:
    """The vault app, started, with the SDK's service registered under `key`."""

    app: FastAPI
    http: TestClient
    key: ServiceKey
    service_id: str
    clients: list[VaultClient] = field(default_factory=list)

    @property
    def state(self) -> AppState:
        return self.app.state.vault  # type: ignore[no-any-return]

    @property
    def ctx(self) -> VaultContext:
        return self.state.ctx

    @property
    def transport(self) -> httpx.BaseTransport:
        return ThroughTestClient(self.http)

    def client(self, **kw: Any) -> VaultClient:
        args: dict[str, Any] = {"client_id": self.service_id, "key": self.key,
                                "transport": self.transport, **kw}
        c = VaultClient(ORIGIN, **args)
        self.clients.append(c)
        return c

    def citizen(self, **terms: Any) -> Citizen:
        """A citizen with data and a passkey who approved a grant of this service."""
        c = citizens.enrol_citizen(self.ctx)
        give_ada_data(self.ctx, c.id)
        w = World(self.service_id, c.id, c.subject)
        device = add_passkey(self.ctx, c.id, SoftAuthenticator(origin=ORIGIN))
        g = ask(self.ctx, w, **terms)
        grants.approve_grant(self.ctx, g.id, citizen_id=c.id,
                             proof=device.proof(challenge=g.terms_hash))
        return Citizen(w, device, g)

    def act(self, citizen: Citizen, action: GrantAction) -> None:
        cid = citizen.world.citizen_id
        challenge = grants.signing_challenge(self.ctx, citizen.grant_id, citizen_id=cid,
                                             action=action)
        do = {GrantAction.PAUSE: grants.pause_grant, GrantAction.RESUME: grants.resume_grant,
              GrantAction.REVOKE: grants.revoke_grant}[action]
        do(self.ctx, citizen.grant_id, citizen_id=cid,
           proof=citizen.device.proof(challenge=challenge))

    def sub(self, citizen: Citizen) -> str:
        return pairwise_sub(self.state.app_secret, self.service_id, citizen.world.citizen_id)

    def mint(self, citizen: Citizen, *, now: datetime | None = None, **kw: Any) -> str:
        """An access token exactly as the token endpoint signs one (5 minutes)."""
        at = now or datetime.now(UTC)
        args: dict[str, Any] = {
            "issuer": ORIGIN, "audience": resource_audience(ORIGIN),
            "client_id": self.service_id, "grant_id": citizen.grant_id,
            "sub": self.sub(citizen),
            "authorization_details": [{"type": "personal_data",
                                       **citizen.grant.terms.to_json()}],
            "now": at, "grant_expires_at": at + timedelta(days=1), **kw}
        return issue_access_token(self.state.token_keys.current, **args)[0]

    def grant(self, citizen: Citizen, *, token: str | None = None,
              refresh_token: str | None = None, expires_in: float = 300) -> Grant:
        """The SDK's Grant for `citizen`, holding `token` (a fresh one by default)."""
        return Grant(grant_id=citizen.grant_id, sub=self.sub(citizen),
                     access_token=token or self.mint(citizen), refresh_token=refresh_token,
                     expires_at=datetime.now(UTC) + timedelta(seconds=expires_in))


def register(ctx: VaultContext, key: ServiceKey, *, redirect_uri: str = REDIRECT,
             name: str = "Blue Badge team") -> str:
    return registry.register_service(ctx, registry.Registration(
        name=name, description="Decides Blue Badge applications",
        purposes=["eligibility_assessment"], categories=["identity.name", "address.home"],
        derived=["age_over_65"], jwk=key.public_jwk(), redirect_uris=[redirect_uri],
        privacy_notice_url="https://badges.example.gov/privacy", max_days=90))


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FastAPI, TestClient]]:
    """One started app per module (starting one takes about a second); each test has its
    own service, so tests do not see each other's requests, grants or suspensions."""
    data = tmp_path_factory.mktemp("vault")
    application = create_app(Settings(data_dir=data / "v", ledger_public=True))
    with TestClient(application, base_url=ORIGIN) as http:
        yield application, http


@pytest.fixture
def app(started: tuple[FastAPI, TestClient]) -> Iterator[AppVault]:
    application, http = started
    key = ServiceKey.generate()
    vault = AppVault(application, http, key, register(application.state.vault.ctx, key))
    limiter = getattr(application.state, LIMITER_ATTRIBUTE)
    try:
        yield vault
    finally:
        setattr(application.state, LIMITER_ATTRIBUTE, limiter)  # a test may replace it
        for c in vault.clients:
            c.close()
