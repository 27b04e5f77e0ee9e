"""The ASGI app: vault API, wallet and ledger, built from one Settings object.

This module is the composition root: the one place that wires the packages together
(it may import the wallet; everything else keeps ledger <- vault <- wallet).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial

from fastapi import FastAPI

from vault.api.body_limit import BodyLimit
from vault.api.deps import AppState
from vault.api.docs_routes import install_api_docs
from vault.api.errors import document_error_responses, install_error_handlers
from vault.api.health import metrics_registry
from vault.api.health import router as health_router
from vault.api.ledger_routes import router as ledger_router
from vault.api.oauth_routes import router as oauth_router
from vault.api.ratelimit import ClientRateLimiter
from vault.api.record_routes import router as record_router
from vault.api.resource_routes import install_resource_api
from vault.api.service_pages import router as service_pages_router
from vault.api.transparency_routes import router as transparency_router
from vault.config import Settings
from vault.crypto import load_app_secret, load_keyring, load_ledger_signer
from vault.crypto.source_key import load_source_keys
from vault.crypto.token_key import TokenKeys, load_token_keys
from vault.demo import seed_demo, welcome_demo_citizen
from vault.logs import RequestLog, configure_logging
from vault.oauth.client_auth import SqlJtiStore
from vault.services.changes import QUEUE as changes_queue
from vault.services.changes import ChangeTeller
from vault.services.checkpoints import CheckpointPublisher
from vault.services.context import VaultContext
from vault.services.group_commit import GroupCommitReader, GroupCommitWriter
from vault.services.registry import adopt_published_pages
from vault.services.sources import SourceFetcher
from vault.services.sweeper import Sweeper
from vault.services.transparency_counts import TransparencyCounter
from vault.services.webhooks import QUEUE as webhooks_queue
from vault.services.webhooks import WebhookDispatcher
from vault.services.witnessing import Witnessing, parse_witnesses
from vault.storage.database import make_engine
from vault.storage.datadir import prepare_data_dir
from vault.storage.schema import migrate
from wallet.passkeys import PasskeyApprovalVerifier, RelyingParty
from wallet.web import build_wallet, install_wallet

__all__ = ["build_state", "create_app"]


def _secret(value: object) -> str | None:
    return value.get_secret_value() if value is not None else None  # type: ignore[attr-defined]


def _wake(threads: dict[str, Callable[[], None]], queued: frozenset[str]) -> None:
    for name in queued:
        threads[name]()


def build_state(settings: Settings) -> AppState:
    """Open the database, migrate it and load the keys: everything a request needs."""
    prepare_data_dir(settings.data_dir)
    signer = load_ledger_signer(
        settings.key_dir,
        origin=settings.ledger_origin or _existing_or_default_origin(settings),
        secret=_secret(settings.ledger_signing_key),
        create=not settings.production,
    )
    keyring = load_keyring(settings.key_dir, master_key=_secret(settings.master_key),
                           production=settings.production)
    engine = make_engine(settings.database)
    migrate(engine)
    app_secret = load_app_secret(settings.key_dir, secret=_secret(settings.app_secret),
                                 production=settings.production)
    witnessing = Witnessing(parse_witnesses(settings.witnesses), quorum=settings.witness_quorum,
                            timeout=settings.witness_timeout) if settings.witnesses else None
    publisher = CheckpointPublisher(engine, signer, interval=settings.checkpoint_interval,
                                    witnessing=witnessing)
    # Every commit may have appended to the ledger: the publisher hears of each. The
    # teller and the dispatcher wake only after a commit that queued work for them (a
    # read queues nothing: waking both on each one cost more CPU than the read itself).
    threads: dict[str, Callable[[], None]] = {}
    ctx = VaultContext(
        engine=engine, keyring=keyring,
        approvals=PasskeyApprovalVerifier(RelyingParty.from_public_url(settings.base_url)),
        after_commit=publisher.nudge, after_queue=partial(_wake, threads), witnessing=witnessing,
        tell_inline=settings.changes_told_inline)
    webhooks = WebhookDispatcher(ctx, app_secret=app_secret)
    # The teller's own commits queue webhooks: it nudges the dispatcher itself.
    changes = ChangeTeller(ctx, then=webhooks.nudge)
    threads.update({changes_queue: changes.nudge, webhooks_queue: webhooks.nudge})
    # Registrations from before the vault published pages about services linked to
    # /privacy and /dpia, which never answered: point them at the pages.
    adopt_published_pages(ctx, settings.base_url)
    token_keys = load_token_keys(settings.key_dir, secret=_secret(settings.token_signing_key),
                                 production=settings.production)
    return AppState(settings, engine, signer, publisher, ctx,
                    Sweeper(ctx, interval=settings.sweep_interval), metrics_registry(engine),
                    app_secret, webhooks, token_keys, SqlJtiStore(engine),
                    GroupCommitReader(ctx), changes=changes, writer=GroupCommitWriter(ctx),
                    counter=TransparencyCounter(ctx),
                    request_limiter=ClientRateLimiter(settings.client_request_rate_limit,
                                                      settings.client_request_rate_burst))


def _sources(settings: Settings, state: AppState) -> tuple[TokenKeys, SourceFetcher]:
    """The source-request keys and the fetcher that asks sources on reads (ARCHITECTURE
    §8, held at source): only the server needs them, not the operator's commands."""
    keys = load_source_keys(settings.key_dir, secret=_secret(settings.source_signing_key),
                            production=settings.production)
    return keys, SourceFetcher(state.ctx, keys=keys, pairwise_secret=state.app_secret,
                               issuer=settings.base_url, timeout=settings.source_timeout)


def _existing_or_default_origin(settings: Settings) -> str | None:
    """An existing key keeps its origin when none is set explicitly."""
    if settings.ledger_signing_key or (settings.key_dir / "ledger.key").exists():
        return None
    return settings.default_origin


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level)
        state = build_state(settings)
        state.source_keys, state.sources = _sources(settings, state)
        if settings.demo and (demo := seed_demo(state.ctx, settings.base_url)) is not None:
            logging.getLogger("vault.demo").info(
                "demo loaded", extra={"citizen_id": demo.citizen_id, "services": demo.services,
                                      "grants": demo.grants})
        app.state.wallet = build_wallet(
            state.ctx, public_url=settings.base_url, signer=state.signer,
            secret=state.app_secret,
            idle=timedelta(minutes=settings.session_idle_minutes),
            absolute=timedelta(hours=settings.session_max_hours),
            after_sign_up=(partial(welcome_demo_citizen, state.ctx) if settings.demo
                           else None))
        state.publisher.start()
        state.sweeper.start()
        state.webhooks.start()
        state.changes.start()
        state.reader.start()
        state.writer.start()
        state.counter.start()
        app.state.vault = state
        try:
            yield
        finally:
            state.counter.stop()
            state.writer.stop()
            state.reader.stop()
            state.changes.stop()
            state.webhooks.stop()
            state.sweeper.stop()
            state.publisher.stop()
            await state.sources.aclose()
            state.engine.dispose()

    app = FastAPI(
        title="Citizen Data Vault",
        summary="Citizens' encrypted data, purpose-bound grants, and a verifiable ledger",
        version="0.1.0",
        lifespan=lifespan,
        # FastAPI's pages load Swagger UI and ReDoc from a CDN; ours serves /docs itself.
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    # Inside the request log (which then logs the 413s), outside everything that reads.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestLog)
    # The services' reads and writes first: a request is matched route by route, in order.
    install_resource_api(app, limiter=ClientRateLimiter(settings.client_rate_limit,
                                                        settings.client_rate_burst))
    app.include_router(record_router)
    app.include_router(health_router)
    app.include_router(ledger_router)
    app.include_router(oauth_router)
    app.include_router(transparency_router)
    app.include_router(service_pages_router)
    install_api_docs(app)
    install_wallet(app, public_url=settings.base_url)
    document_error_responses(app)  # after every route: /openapi.json says 400, not 422
    return app
