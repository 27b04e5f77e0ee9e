"""`vault ledger verify|export`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ledger.audit import audit_log
from ledger.checkpoint import open_checkpoint
from ledger.entry import parse_entry
from ledger.errors import EncodingError, LedgerError, LogInvalid
from ledger.sealing import check_opening, parse_opening
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
    """Check every entry, the hash chain and the tree against the latest signed checkpoint,
    and every sealed entry's opening against its commitment."""
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
            opened = _check_openings(ledger, stored.size)
        result = {"ok": True, "size": verified.head.size,
                  "checkpoint_size": cp.size if cp else None, "uncovered": verified.uncovered,
                  "openings": opened, "key": str(verifier)}
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
                  f"{result['checkpoint_size']:,} signed by {verifier.name}; "
                  f"{result['openings']:,} sealed entries open to their commitments")
    else:
        where = f"entry {result['index']}: " if result["index"] is not None else ""
        out.print(f"[red]✗ ledger does not verify[/]: {where}{result['reason']}")
    raise typer.Exit(0 if result["ok"] else 1)


def _check_openings(ledger: SqlLedger, size: int) -> int:
    """Check the opening of every sealed entry of the first `size` (already audited);
    return how many. A sealed entry without one, or a v1 entry with one, fails."""
    opened = 0
    for seq, data, opening in ledger.iter_opened():
        if seq >= size:
            break
        entry = parse_entry(data)
        if entry.sealed is None:
            if opening is not None:
                raise LogInvalid(seq, "a v1 entry has an opening: it has nothing sealed")
            continue
        if opening is None:
            raise LogInvalid(seq, "the sealed entry's opening is missing")
        try:
            check_opening(entry, parse_opening(opening))
        except EncodingError as exc:
            raise LogInvalid(seq, f"the stored opening is malformed: {exc}") from None
        opened += 1
    return opened


@ledger_app.command("export")
def ledger_export(
    out_file: Annotated[Path | None, typer.Option("--out", help="NDJSON file (default stdout).")]
    = None,
    openings_file: Annotated[Path | None, typer.Option(
        "--openings", help="Also write the sealed entries' openings ({seq, salt, private}, "
                           "NDJSON) to this file: they name citizens' pseudonyms, keep it as "
                           "an auditor's copy.")] = None,
    database: Database = None,
    data_dir: DataDir = None,
) -> None:
    """Write every entry as NDJSON: one line an entry, exactly the bytes that were hashed."""
    cfg = settings(database_url=database, data_dir=data_dir)
    require_vault(cfg)
    with fail_cleanly():
        engine = make_engine(cfg.database)
    tmp = out_file.with_name(out_file.name + ".partial") if out_file else None
    tmp_openings = openings_file.with_name(openings_file.name + ".partial") \
        if openings_file else None
    opened = 0
    try:
        with read_only(engine).begin() as conn:
            ledger = SqlLedger(conn)
            size = ledger.size()
            sink = tmp.open("wb") if tmp else sys.stdout.buffer
            openings = tmp_openings.open("wb") if tmp_openings else None
            with progress(size, "exporting") as bar:
                task = bar.add_task("entries", total=size)
                # One read transaction: the openings are exactly those of the entries.
                for seq, data, opening in ledger.iter_opened():
                    sink.write(data + b"\n")
                    if openings is not None and opening is not None:
                        openings.write(opening + b"\n")
                        opened += 1
                    if seq % 10_000 == 0:
                        bar.update(task, completed=seq)
            if tmp:
                sink.close()
            if openings is not None:
                openings.close()
    finally:
        engine.dispose()
    if tmp and out_file:
        tmp.replace(out_file)  # a half-written export never carries the final name
        err.print(f"exported {size:,} entries to {out_file}")
    if tmp_openings and openings_file:
        tmp_openings.replace(openings_file)
        err.print(f"exported {opened:,} openings to {openings_file}")
