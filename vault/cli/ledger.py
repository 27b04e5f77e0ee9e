"""`vault ledger verify|export`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ledger.audit import audit_log
from ledger.checkpoint import open_checkpoint
from ledger.errors import LedgerError, LogInvalid
from ledger.sqlstore import SqlLedger
from vault.cli.common import (
    Database,
    DataDir,
    Json,
    err,
    fail_cleanly,
    out,
    progress,
    require_vault,
    settings,
)
from vault.crypto import load_ledger_signer
from vault.storage.database import make_engine, read_only

ledger_app = typer.Typer(help="Verify and export the ledger.", no_args_is_help=True)


@ledger_app.command("verify")
def ledger_verify(
    database: Database = None,
    data_dir: DataDir = None,
    as_json: Json = False,
) -> None:
    """Check every entry, the hash chain and the tree against the latest signed checkpoint."""
    cfg = settings(database_url=database, data_dir=data_dir)
    require_vault(cfg)
    with fail_cleanly():
        secret = (cfg.ledger_signing_key.get_secret_value()
                  if cfg.ledger_signing_key else None)
        verifier = load_ledger_signer(cfg.key_dir, origin=cfg.ledger_origin,
                                      secret=secret, create=False).verifier()
        engine = make_engine(cfg.database)
    result: dict[str, Any]
    try:
        with read_only(engine).begin() as conn:
            ledger = SqlLedger(conn)
            stored = ledger.tree_head()
            latest = ledger.latest_checkpoint()
            cp = open_checkpoint(latest[1], expected_verifier=verifier) if latest else None
            with progress(stored.size, "verifying") as bar:
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
    cfg = settings(database_url=database, data_dir=data_dir)
    require_vault(cfg)
    with fail_cleanly():
        engine = make_engine(cfg.database)
    tmp = out_file.with_name(out_file.name + ".partial") if out_file else None
    try:
        with read_only(engine).begin() as conn:
            ledger = SqlLedger(conn)
            size = ledger.size()
            sink = tmp.open("wb") if tmp else sys.stdout.buffer
            with progress(size, "exporting") as bar:
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
