"""The ASGI app: vault API, wallet (later) and ledger, built from one Settings object."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from vault.api.deps import AppState
from vault.api.errors import install_error_handlers
from vault.api.ledger_routes import router as ledger_router
from vault.config import Settings
from vault.crypto import load_ledger_signer
from vault.demo import seed_demo
from vault.services.checkpoints import CheckpointPublisher
from vault.storage.database import make_engine
from vault.storage.schema import migrate

__all__ = ["create_app"]


def build_state(settings: Settings) -> AppState:
    """Open the database, migrate it and load the keys: everything a request needs."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key_dir = settings.key_dir
    secret = settings.ledger_signing_key.get_secret_value() if settings.ledger_signing_key else None
    signer = load_ledger_signer(
        key_dir,
        origin=settings.ledger_origin or _existing_or_default_origin(settings),
        secret=secret,
        create=not settings.production,
    )
    engine = make_engine(settings.database)
    migrate(engine)
    publisher = CheckpointPublisher(engine, signer, interval=settings.checkpoint_interval)
    return AppState(settings, engine, signer, publisher)


def _existing_or_default_origin(settings: Settings) -> str | None:
    """An existing key keeps its origin when none is set explicitly."""
    if settings.ledger_signing_key or (settings.key_dir / "ledger.key").exists():
        return None
    return settings.default_origin


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = build_state(settings)
        if settings.demo:
            seed_demo(state.engine)
        state.publisher.start()
        app.state.vault = state
        try:
            yield
        finally:
            state.publisher.stop()
            state.engine.dispose()

    app = FastAPI(
        title="Citizen Data Vault",
        summary="Citizens' encrypted data, purpose-bound grants, and a verifiable ledger",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(ledger_router)

    @app.get("/healthz", tags=["health"], summary="Liveness")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
