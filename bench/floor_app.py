"""The floors of the service-load benchmark: the least a FastAPI app costs, served alike.

Served exactly as the vault is (uvicorn, 2 workers, the same database), so the ratio
of `/v1/data` to these says what the vault's own work costs, not what FastAPI, uvicorn
or the database cost:

* `GET /json`: an `async def` endpoint returning a small JSON object. No database, no
  middleware: routing, FastAPI's serialization and uvicorn.
* `GET /row/{grant_id}`: one row read by primary key from the vault's own `grants`
  table (the row every `/v1/data` locks), through the vault's engine (`make_engine`,
  so SQLite gets the same pragmas and WAL), in a read-only transaction (a deferred
  BEGIN on SQLite, so readers never queue for the write lock). A sync (`def`) endpoint,
  which FastAPI runs on its thread pool (40 threads): the vault reads with the same
  sync drivers (sqlite3, psycopg), and an async driver would be another stack. The
  pool holds more connections than there are threads (48, plus 96 overflow): with
  fewer, threads wait on the pool, and 64 concurrent requests can lock up.

uvicorn builds the app in each worker: `uvicorn bench.floor_app:create_floor_app
--factory`, configured by BENCH_FLOOR_DATABASE_URL (a factory takes no arguments, so
the environment is this composition root's only input).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException
from sqlalchemy import bindparam
from sqlmodel import col, select

from vault.storage.database import make_engine, read_only
from vault.storage.tables import GrantRow

__all__ = ["DATABASE_ENV", "POOL_SIZE", "build_floor_app", "create_floor_app"]

DATABASE_ENV = "BENCH_FLOOR_DATABASE_URL"
#: Above FastAPI's 40 worker threads (make_engine allows twice as many again as overflow).
POOL_SIZE = 48

_ROW = (
    select(GrantRow.id, GrantRow.state, GrantRow.reads, GrantRow.service_id)
    .where(col(GrantRow.id) == bindparam("grant_id"))
)


def build_floor_app(database_url: str) -> FastAPI:
    """The floor app over `database_url` (which need not exist until the first request)."""
    engine = make_engine(database_url, pool_size=POOL_SIZE)
    reader = read_only(engine)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            engine.dispose()

    app = FastAPI(lifespan=lifespan, openapi_url=None)

    @app.get("/json")
    async def bare_json() -> dict[str, Any]:
        return {"status": "ok", "service": "floor", "values": [1, 2, 3]}

    @app.get("/row/{grant_id}")
    def one_row(grant_id: str) -> dict[str, Any]:
        with reader.connect() as conn:
            row = conn.execute(_ROW, {"grant_id": grant_id}).first()
        if row is None:
            raise HTTPException(404, "no such grant")
        return {"id": row.id, "state": row.state, "reads": row.reads,
                "service_id": row.service_id}

    return app


def create_floor_app() -> FastAPI:
    """The uvicorn factory: configured from the environment (see the module docstring)."""
    return build_floor_app(os.environ[DATABASE_ENV])
