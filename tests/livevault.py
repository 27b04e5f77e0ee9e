"""A real vault served by uvicorn on a free loopback port, for tests over real sockets."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import FastAPI

from vault.app import create_app
from vault.config import Settings


@dataclass(frozen=True)
class LiveVault:
    url: str
    settings: Settings
    #: The served app; once started, `app.state.vault` is its AppState (same process).
    app: FastAPI | None = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_app(app: Any, port: int, *, what: str = "the app") -> Iterator[str]:
    """Serve an ASGI app with uvicorn on loopback `port` until the block ends; its URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.02)
    try:
        yield f"http://localhost:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def serve(settings: Settings) -> Iterator[LiveVault]:
    """Serve `settings` (its port is replaced by a free one) until the block ends."""
    port = free_port()
    settings = settings.model_copy(update={"port": port})
    app = create_app(settings)
    with serve_app(app, port, what="the vault") as url:
        yield LiveVault(url, settings, app)
