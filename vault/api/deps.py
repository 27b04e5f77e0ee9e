"""Request dependencies: the app's state and the auditor's credentials."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from prometheus_client import CollectorRegistry
from sqlalchemy.engine import Engine

from ledger.note import Signer
from vault.api.ratelimit import DEFAULT_REQUEST_BURST, DEFAULT_REQUEST_RATE, ClientRateLimiter
from vault.config import Settings
from vault.crypto.token_key import TokenKeys
from vault.errors import NotAuthorized
from vault.oauth.client_auth import SqlJtiStore
from vault.oauth.tokens import VerifiedTokens
from vault.services.changes import ChangeTeller
from vault.services.checkpoints import CheckpointPublisher
from vault.services.context import VaultContext
from vault.services.group_commit import GroupCommitReader, GroupCommitWriter
from vault.services.sources import SourceFetcher
from vault.services.sweeper import Sweeper
from vault.services.transparency_counts import TransparencyCounter
from vault.services.webhooks import WebhookDispatcher

__all__ = ["AppState", "Auditor", "AuditorKey", "State", "get_state", "require_auditor",
           "require_auditor_key"]


@dataclass(slots=True)
class AppState:
    settings: Settings
    engine: Engine
    signer: Signer
    publisher: CheckpointPublisher
    ctx: VaultContext
    sweeper: Sweeper
    metrics: CollectorRegistry
    #: The web app's secret (CSRF, recovery codes, webhook signing secrets).
    app_secret: bytes
    webhooks: WebhookDispatcher
    #: ES256 keys signing access tokens (current, and a retiring one during rotation).
    token_keys: TokenKeys
    #: ES256 keys signing requests to sources, published beside the token keys in
    #: /oauth/jwks; and the fetcher that asks sources on reads (`create_app` sets both).
    source_keys: TokenKeys | None = field(default=None, kw_only=True)
    sources: SourceFetcher | None = field(default=None, kw_only=True)
    #: Client-assertion jti replay protection, shared by every worker.
    jti_store: SqlJtiStore
    #: Reads under grants, group-committed.
    reader: GroupCommitReader
    #: Access tokens already verified by this worker (their signatures are not rechecked).
    verified_tokens: VerifiedTokens = field(default_factory=VerifiedTokens)
    #: Each client's rate of requests that ask citizens (POST /oauth/par, bc-authorize).
    request_limiter: ClientRateLimiter = field(default_factory=lambda: ClientRateLimiter(
        DEFAULT_REQUEST_RATE, DEFAULT_REQUEST_BURST))
    #: Tells services of record changes (queues `record.changed` after each change).
    changes: ChangeTeller = field(kw_only=True)
    #: Issuer writes (PUT /v1/records/{category}), group-committed.
    writer: GroupCommitWriter = field(kw_only=True)
    #: Counts the transparency report's figures from the public ledger as it grows.
    counter: TransparencyCounter = field(kw_only=True)


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.vault
    return state


State = Annotated[AppState, Depends(get_state)]


def require_auditor(request: Request, state: State) -> None:
    """Entries and proofs need an auditor key unless the operator made the ledger public."""
    if state.settings.ledger_public:
        return
    require_auditor_key(request, state)


def require_auditor_key(request: Request, state: State) -> None:
    """An auditor key, however public the ledger: openings are per citizen (ARCHITECTURE §10)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise NotAuthorized("this ledger needs an auditor API key (Authorization: Bearer ...)")
    # Compare against every key so timing does not reveal which one nearly matched.
    matched = False
    for key in state.settings.auditor_keys:
        matched |= hmac.compare_digest(token.encode(), key.encode())
    if not matched:
        raise NotAuthorized("the auditor API key is not valid")


Auditor = Depends(require_auditor)
AuditorKey = Depends(require_auditor_key)
