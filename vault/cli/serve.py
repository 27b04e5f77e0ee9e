"""`vault serve`."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from vault.cli.common import Database, DataDir, fail_cleanly, out, redact, settings


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    public_url: Annotated[str | None, typer.Option(
        "--public-url", help="URL citizens use (default http://localhost:PORT).")] = None,
    database: Database = None,
    data_dir: DataDir = None,
    demo: Annotated[bool, typer.Option(help="Load demo services, a citizen and grants.")] = False,
) -> None:
    """Run the vault: API, wallet and ledger."""
    import uvicorn

    from vault.app import create_app

    public = demo and "VAULT_LEDGER_PUBLIC" not in os.environ  # the demo's ledger is public
    cfg = settings(host=host, port=port, public_url=public_url, database_url=database,
                   data_dir=data_dir, demo=demo or None, ledger_public=True if public else None)
    base = cfg.base_url
    out.print(f"[bold]Citizen Data Vault[/] at {base}  (database: {redact(cfg.database)})")
    out.print(f"  ledger checkpoint  {base}/ledger/checkpoint")
    out.print(f"  ledger key         {base}/ledger/key")
    out.print(f"  API docs           {base}/docs")
    out.print(f"  verify the ledger  vault-audit verify {base}")
    with fail_cleanly():
        uvicorn.run(create_app(cfg), host=cfg.host, port=cfg.port, log_level="warning",
                    proxy_headers=False)
