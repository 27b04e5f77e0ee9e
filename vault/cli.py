"""`vault`: run the vault and look after its ledger (ARCHITECTURE §7)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ledger.audit import audit_log
from ledger.checkpoint import open_checkpoint
from ledger.errors import LedgerError, LogInvalid
from ledger.sqlstore import SqlLedger
from vault.config import Settings
from vault.crypto import load_ledger_signer
from vault.errors import VaultError
from vault.storage.database import make_engine, read_only

app = typer.Typer(
    help="Citizen Data Vault: encrypted personal data, grants and a verifiable ledger.",
    no_args_is_help=True, add_completion=False,
)
ledger_app = typer.Typer(help="Verify and export the ledger.", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")

out = Console()
err = Console(stderr=True)

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Keys and the SQLite file.")]
Database = Annotated[str | None, typer.Option("--database", help="Database URL.")]


def _settings(**overrides: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        err.print(f"[red]error:[/] {'.'.join(map(str, first['loc']))}: {first['msg']}")
        raise typer.Exit(2) from None


@contextmanager
def _fail_cleanly() -> Iterator[None]:
    try:
        yield
    except (VaultError, LedgerError) as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None


def _progress(total: int, label: str) -> Progress:
    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=err, transient=True, disable=total < 50_000 or not err.is_terminal)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    public_url: Annotated[str | None, typer.Option(
        "--public-url", help="URL citizens use (default http://localhost:PORT).")] = None,
    database: Database = None,
    data_dir: DataDir = None,
    demo: Annotated[bool, typer.Option(help="Load demo services and entries.")] = False,
) -> None:
    """Run the vault: API, wallet and ledger."""
    import uvicorn

    from vault.app import create_app

    settings = _settings(host=host, port=port, public_url=public_url, database_url=database,
                         data_dir=data_dir, demo=demo or None,
                         ledger_public=True if demo and "VAULT_LEDGER_PUBLIC" not in os.environ
                         else None)
    base = settings.base_url
    out.print(f"[bold]Citizen Data Vault[/] at {base}  (database: {_redact(settings.database)})")
    out.print(f"  ledger checkpoint  {base}/ledger/checkpoint")
    out.print(f"  ledger key         {base}/ledger/key")
    out.print(f"  API docs           {base}/docs")
    out.print(f"  verify the ledger  vault-audit verify {base}")
    with _fail_cleanly():
        uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                    log_level="info", proxy_headers=False)


def _redact(url: str) -> str:
    """Hide a password in a database URL before printing it."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}" if ":" in creds else url


@ledger_app.command("verify")
def ledger_verify(
    database: Database = None,
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Check every entry, the hash chain and the tree against the latest signed checkpoint."""
    settings = _settings(database_url=database, data_dir=data_dir)
    with _fail_cleanly():
        secret = (settings.ledger_signing_key.get_secret_value()
                  if settings.ledger_signing_key else None)
        verifier = load_ledger_signer(settings.key_dir, origin=settings.ledger_origin,
                                      secret=secret, create=False).verifier()
        engine = make_engine(settings.database)
    result: dict[str, Any]
    try:
        with read_only(engine).begin() as conn:
            ledger = SqlLedger(conn)
            stored = ledger.tree_head()
            latest = ledger.latest_checkpoint()
            cp = open_checkpoint(latest[1], expected_verifier=verifier) if latest else None
            with _progress(stored.size, "verifying") as bar:
                task = bar.add_task("entries", total=stored.size)
                verified = audit_log(
                    ((data, leaf) for _, leaf, data in ledger.iter_entries()),
                    checkpoint=cp,
                    on_progress=lambda n: bar.update(task, completed=n),
                )
            if verified.head != stored:
                raise LogInvalid(stored.size - 1, "the stored tree head does not match the entries")
        result = {"ok": True, "size": verified.head.size,
                  "checkpoint_size": cp.size if cp else None, "uncovered": verified.uncovered,
                  "key": str(verifier)}
    except LogInvalid as exc:
        result = {"ok": False, "index": exc.index, "reason": exc.reason}
    except LedgerError as exc:
        result = {"ok": False, "index": None, "reason": str(exc)}
    finally:
        engine.dispose()
    if as_json:
        out.print_json(json.dumps(result))
    elif result["ok"]:
        out.print(f"[green]✓[/] {result['size']:,} entries verified: seq, prev links, leaf "
                  f"hashes and the Merkle root match the checkpoint at size "
                  f"{result['checkpoint_size']:,} signed by {verifier.name}")
    else:
        where = f"entry {result['index']}: " if result["index"] is not None else ""
        out.print(f"[red]✗ ledger does not verify[/]: {where}{result['reason']}")
    raise typer.Exit(0 if result["ok"] else 1)


@ledger_app.command("export")
def ledger_export(
    out_file: Annotated[Path | None, typer.Option("--out", help="NDJSON file (default stdout).")]
    = None,
    database: Database = None,
    data_dir: DataDir = None,
) -> None:
    """Write every entry as NDJSON: one line an entry, exactly the bytes that were hashed."""
    settings = _settings(database_url=database, data_dir=data_dir)
    with _fail_cleanly():
        engine = make_engine(settings.database)
    tmp = out_file.with_name(out_file.name + ".partial") if out_file else None
    try:
        with read_only(engine).begin() as conn:
            ledger = SqlLedger(conn)
            size = ledger.size()
            sink = tmp.open("wb") if tmp else sys.stdout.buffer
            with _progress(size, "exporting") as bar:
                task = bar.add_task("entries", total=size)
                for seq, _, data in ledger.iter_entries():
                    sink.write(data + b"\n")
                    if seq % 10_000 == 0:
                        bar.update(task, completed=seq)
            if tmp:
                sink.close()
    finally:
        engine.dispose()
    if tmp and out_file:
        tmp.replace(out_file)  # a half-written export never carries the final name
        err.print(f"exported {size:,} entries to {out_file}")


def main() -> None:
    app()
