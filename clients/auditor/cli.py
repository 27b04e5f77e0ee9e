"""`vault-audit`: verify a vault's ledger from the outside (ARCHITECTURE §7)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from clients.auditor.fetch import AuditorError, LedgerClient
from clients.auditor.remote import verify_remote
from ledger.errors import LedgerError, LogInvalid
from ledger.note import Verifier

app = typer.Typer(help="Verify a Citizen Data Vault's ledger without trusting its operator.",
                  no_args_is_help=True, add_completion=False)
out = Console()
err = Console(stderr=True)


@app.command()
def verify(
    url: Annotated[str, typer.Argument(help="The vault's base URL, e.g. http://localhost:8000")],
    key: Annotated[str | None, typer.Option(
        help="The ledger's verifier key (name+id+key). Pin it: without it the vault's own "
             "/ledger/key is trusted.")] = None,
    api_key: Annotated[str | None, typer.Option(
        "--api-key", envvar="VAULT_AUDITOR_API_KEY", help="Auditor API key.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Fetch every entry and check the signed checkpoint, the hash chain and the tree."""
    result: dict[str, object]
    try:
        pinned = Verifier.parse(key) if key else None
        with LedgerClient(url, api_key=api_key) as client, Progress(
            TextColumn("verifying"), BarColumn(), MofNCompleteColumn(), console=err,
            transient=True, disable=as_json or not err.is_terminal,
        ) as bar:
            task = bar.add_task("entries", total=None)
            done = verify_remote(client, expected_key=pinned,
                                 on_progress=lambda n, t: bar.update(task, completed=n, total=t))
        result = {"ok": True, "size": done.checkpoint.size, "origin": done.checkpoint.origin,
                  "root": done.checkpoint.root.hex(), "key": str(done.key),
                  "key_pinned": done.key_pinned}
    except LogInvalid as exc:
        result = {"ok": False, "index": exc.index, "reason": exc.reason}
    except (LedgerError, AuditorError) as exc:
        result = {"ok": False, "index": None, "reason": str(exc)}
    if as_json:
        out.print_json(json.dumps(result))
    elif result["ok"]:
        out.print(f"[green]✓[/] {result['size']:,} entries of {result['origin']} verified "
                  "against the signed checkpoint (signature, seq, prev links, leaf hashes, root)")
        if not result["key_pinned"]:
            out.print("[yellow]![/] the key came from the vault itself; pin it with --key "
                      f"{result['key']}")
    else:
        where = f"entry {result['index']}: " if result["index"] is not None else ""
        out.print(f"[red]✗ does not verify[/]: {where}{result['reason']}")
    raise typer.Exit(0 if result["ok"] else 1)


@app.command()
def key(url: Annotated[str, typer.Argument(help="The vault's base URL")]) -> None:
    """Print the ledger's verifier key, to pin it for later runs."""
    try:
        with LedgerClient(url) as client:
            out.print(str(Verifier.parse(client.key())))
    except (LedgerError, AuditorError) as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None


def main() -> None:
    app()
